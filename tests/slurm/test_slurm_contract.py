"""The provisioner contract (``provisioners/base.py``) held by ``slurm`` against the real cluster, call by
call: idempotent provision and submit, a moved lease and a moved window followed, one reservation for
the jobs of a lease (deleted by the last release), idempotent cancel and release, unknown ids."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

from slotbroker.domain.jobs import Workload
from slotbroker.domain.slurm_text import parse_time
from slotbroker.services.planner.provisioners.base import (
    Allocation,
    AllocationItem,
    Provision,
    ProvisionerError,
    ProvisionPhase,
    RunPhase,
)
from slotbroker.services.planner.provisioners.slurm import SlurmProvisioner
from slotbroker.services.planner.provisioners.slurm_config import SlurmConfig
from slurm_cluster import SlurmCluster

pytestmark = pytest.mark.slurm


def allocation(hosts: tuple[str, ...], start: int, end: int, lease: str | None = None) -> Allocation:
    items = tuple(AllocationItem(h, "VCPU", 1) for h in hosts)
    return Allocation(lease or str(uuid.uuid4()), "alpha", start, end, items, hosts=hosts)


async def until_done(prov: SlurmProvisioner, run_id: str, timeout: float = 60.0) -> RunPhase:
    deadline = time.monotonic() + timeout
    while True:
        rs = await prov.run_status(run_id)
        if rs.phase in (RunPhase.SUCCEEDED, RunPhase.FAILED, RunPhase.CANCELED):
            return rs.phase
        assert time.monotonic() < deadline, f"run {run_id} still {rs}"
        await asyncio.sleep(0.3)


def test_provision_and_submit_are_idempotent_and_follow_moves(
    slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    cluster = slurm_cluster
    prov = SlurmProvisioner(SlurmConfig(conf=str(cluster.conf), spool=str(tmp_path), users="root"))
    now = int(time.time())
    alloc = allocation(("n1",), now + 300, now + 600)

    async def scenario() -> None:
        name = await prov.provision(alloc, "job-1#1")
        assert await prov.provision(alloc, "job-1#1") == name  # same key: the same reservation
        assert (await prov.status(name)).phase is ProvisionPhase.READY
        res = cluster.reservations()[name]
        assert (parse_time(res["StartTime"]), parse_time(res["EndTime"])) == (now + 300, now + 600)

        # a PENDING lease moved later and longer: the reservation follows both times
        moved = Allocation(alloc.lease_id, "alpha", now + 400, now + 900, alloc.items, hosts=alloc.hosts)
        await prov.follow(Provision(name, moved))
        res = cluster.reservations()[name]
        assert (parse_time(res["StartTime"]), parse_time(res["EndTime"])) == (now + 400, now + 900)

        # a retry that moved the lease to n2 (and a changed end): provisioning again brings both along
        rehosted = allocation(("n2",), now + 400, now + 950, lease=alloc.lease_id)
        assert await prov.provision(rehosted, "job-1#2") == name
        res = cluster.reservations()[name]
        assert await prov.slurm.hostnames(res["Nodes"]) == ["n2"]
        assert parse_time(res["EndTime"]) == now + 950

        work = Workload(command=("true",))
        run_id = await prov.submit(work, Provision(name, rehosted), "job-1")
        assert await prov.submit(work, Provision(name, rehosted), "job-1") == run_id  # same key, one job
        assert (await prov.run_status(run_id)).phase is RunPhase.QUEUED  # waits for the reservation
        await prov.cancel(run_id)
        await prov.cancel(run_id)  # idempotent
        assert (await prov.run_status(run_id)).phase is RunPhase.CANCELED
        await prov.release(name)
        await prov.release(name)  # idempotent
        assert name not in cluster.reservations()
        assert (await prov.status(name)).phase is ProvisionPhase.UNKNOWN
        assert (await prov.run_status("999999")).phase is RunPhase.UNKNOWN

    asyncio.run(scenario())


def test_one_reservation_serves_the_leases_jobs_until_the_last_release(
    slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    cluster = slurm_cluster
    prov = SlurmProvisioner(SlurmConfig(conf=str(cluster.conf), spool=str(tmp_path), users="root"))
    now = int(time.time())
    alloc = allocation(("n2", "n3"), now, now + 120)

    async def scenario() -> None:
        name = await prov.provision(alloc, "a#1")
        assert await prov.provision(alloc, "b#1") == name
        long = await prov.submit(
            Workload(command=("sleep", "60"), extra={"nodes": 1}), Provision(name, alloc), "b"
        )
        short_work = Workload(command=("sh", "-c", "echo $SLOTBROKER_JOB_ID; exit 3"), extra={"nodes": 1})
        short = await prov.submit(short_work, Provision(name, alloc), "a")
        assert await until_done(prov, short) is RunPhase.FAILED
        rs = await prov.run_status(short)
        assert (rs.exit_code, rs.logs) == (3, ("a",))
        await prov.release(name)  # job b still runs in it: kept
        assert name in cluster.reservations()
        await prov.cancel(long)
        await prov.release(name)  # the last one: deleted
        assert name not in cluster.reservations()

    asyncio.run(scenario())


def test_refusals_are_provisioner_errors(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    cluster = slurm_cluster
    prov = SlurmProvisioner(SlurmConfig(conf=str(cluster.conf), spool=str(tmp_path), users="root"))
    now = int(time.time())

    async def scenario() -> None:
        prefixed = SlurmProvisioner(
            SlurmConfig(conf=str(cluster.conf), spool=str(tmp_path), host_prefix="hpc-")
        )
        with pytest.raises(ProvisionerError, match="no host of this lease"):
            await prefixed.provision(allocation(("cern-w2",), now, now + 60), "x#1")
        with pytest.raises(ProvisionerError, match="Slurm refused reservation"):
            await prov.provision(allocation(("n9",), now, now + 60), "y#1")  # no such node
        with pytest.raises(ProvisionerError, match="has ended"):
            await prov.provision(allocation(("n1",), now - 120, now - 60), "z#1")
        with pytest.raises(ProvisionerError, match="sbatch refused"):
            await prov.submit(
                Workload(command=("true",)),
                Provision("sb-nonexistent", allocation(("n1",), now, now + 60)),
                "j",
            )

    asyncio.run(scenario())
    assert not [n for n in cluster.reservations() if n.startswith("sb-")]
