"""The ``slurm`` provisioner end to end against a real slurmctld with three slurmd (``slurm_cluster``):
leases booked through ``LeaseService`` on a site whose hosts are the Slurm nodes, jobs run by the planner's
embedded pool. What Slurm holds is read back with ``scontrol`` (the cluster's own word, not ours).

Windows are short (a lease starts a few seconds from now and lasts a minute or two) so the whole file
stays within its time budget on a loaded 2-core machine; waits are generous, never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from planner_support import fast_settings, make_site, run, wait_state
from slotbroker.domain.jobs import JobSpec, Workload
from slotbroker.domain.slurm_text import parse_time
from slotbroker.services.booking.claims import ClaimService
from slotbroker.services.booking.leases import LeaseService
from slotbroker.services.booking.quotas import QuotaService
from slotbroker.services.planner.provisioners.slurm import SlurmProvisioner
from slotbroker.services.planner.provisioners.slurm_config import SlurmConfig
from slotbroker.services.planner.service import Planner
from slotbroker.services.planner.settings import PlannerSettings, ProvisionerPolicy, RetryPolicy
from slotbroker.services.planner.worker import WorkerPool
from slotbroker.store import migrate
from slotbroker.store.db import Database
from slotbroker.wire.leases import CreateLease, LeaseItemSpec, UpdateLease
from slurm_cluster import SlurmCluster

pytestmark = pytest.mark.slurm

SLURM_POLICY = ProvisionerPolicy(
    readiness_timeout_s=30.0,
    poll_interval_s=0.5,  # each poll is a scontrol call: keep the machine for the daemons
    call_timeout_s=30.0,
    retry=RetryPolicy(max_attempts=3, backoff_s=0.2, backoff_factor=1.0),
)


@pytest.fixture
def sdb(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path}/slotbroker.db")
    migrate.upgrade(database.engine)
    yield database
    database.dispose()


def settings() -> PlannerSettings:
    return fast_settings(workers=4, policies={"slurm": SLURM_POLICY})


def provisioner(cluster: SlurmCluster, spool: Path) -> SlurmProvisioner:
    return SlurmProvisioner(SlurmConfig(conf=str(cluster.conf), spool=str(spool), users="root"))


def at(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


def create_lease(leases: LeaseService, hosts: dict[str, str], names: list[str], start: int, end: int) -> str:
    items = [LeaseItemSpec(provider_uuid=uuid.UUID(hosts[n]), resource_class="VCPU", amount=1) for n in names]
    view = leases.create(CreateLease(start=at(start), end=at(end), items=items), project="alpha")
    return str(view.id)


async def until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll ``check()`` (sync, run in a thread) until it is true."""
    deadline = time.monotonic() + timeout
    while True:
        if await asyncio.to_thread(check):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.3)


def job_state(cluster: SlurmCluster, job_id: str) -> str:
    line = cluster.run("scontrol", "show", "job", "-o", job_id, check=False).stdout
    fields = dict(tok.split("=", 1) for tok in line.split() if "=" in tok)
    return fields.get("JobState", "?")


def test_lease_becomes_a_reservation_that_follows_it_and_goes_with_it(
    slurm_cluster: SlurmCluster, db: Database, tmp_path: Path
) -> None:
    """Book two nodes -> reservation sb-<lease> on them for the lease's window -> a job runs in it ->
    extending the lease moves the reservation's end -> cancelling the lease cancels the Slurm job,
    deletes the reservation and keeps the job's output in its log. SQLite and PostgreSQL."""
    cluster, sdb = slurm_cluster, db
    hosts = make_site(sdb, hosts=("n1", "n2", "n3"), vcpu=2)
    leases = LeaseService(sdb, ClaimService(sdb), QuotaService(sdb))
    slurm = provisioner(cluster, tmp_path / "spool")
    planner = Planner(sdb, settings=settings(), provisioners={"slurm": slurm})
    planner.register(leases)
    now = int(time.time())
    start, end = now + 8, now + 120
    lease = create_lease(leases, hosts, ["n1", "n2"], start, end)
    name = f"sb-{lease}"
    script = "#!/bin/sh\necho hello from $SLOTBROKER_LEASE_ID on $SLURM_JOB_NUM_NODES nodes\nsleep 300\n"
    job = planner.create(_spec(lease, {"script": script}))

    async def scenario() -> None:
        pool = WorkerPool(planner)
        pool.start()
        try:
            # made in advance: the reservation exists before the lease starts, the job waits in it
            queued = await wait_state(planner, job.id, ["submitted", "running"], timeout=60)
            res = cluster.reservations()[name]
            seen_at = time.time()
            assert sorted(await slurm.slurm.hostnames(res["Nodes"])) == ["n1", "n2"]
            assert parse_time(res["EndTime"]) == end
            if seen_at < start - 1:  # the usual case; a very loaded machine may get here after the start
                assert queued.state == "submitted"
                assert res["State"] == "INACTIVE"
                assert parse_time(res["StartTime"]) == start
            else:
                assert start <= (parse_time(res["StartTime"]) or 0) <= seen_at
            await wait_state(planner, job.id, ["running"], timeout=60)
            run_id = planner.get(job.id).run_id
            assert run_id is not None
            assert job_state(cluster, run_id) == "RUNNING"

            view = leases.get(lease, project=None)
            update = UpdateLease(generation=view.generation, end=at(end + 60))
            await asyncio.to_thread(leases.update, lease, update, project=None)
            await until(
                lambda: parse_time(cluster.reservations()[name]["EndTime"]) == end + 60,
                "the reservation to follow the extended lease",
            )

            await asyncio.to_thread(leases.cancel, lease, project=None)
            done = await wait_state(planner, job.id, ["expired"], timeout=60)
            assert name not in cluster.reservations()
            assert job_state(cluster, run_id) == "CANCELLED"
            lines = [ln.line for ln in planner.logs(job.id)]
            assert f"hello from {lease} on 2 nodes" in lines, lines
            assert done.state == "expired"
        finally:
            await pool.stop()

    run(scenario(), timeout=150)


def test_a_reservation_slurm_refuses_fails_over_to_another_node(
    slurm_cluster: SlurmCluster, sdb: Database, tmp_path: Path
) -> None:
    """A reservation made outside the broker holds n3: Slurm refuses the lease's reservation there, the
    planner's retry moves the lease to a free node and the job runs to success on it."""
    cluster = slurm_cluster
    hosts = make_site(sdb, hosts=("n3", "n2"), vcpu=2)  # alternates in name order: n2 after n3 failed
    cluster.run(
        "scontrol", "create", "reservation", "reservationname=outside", "starttime=now",
        "duration=10", "nodes=n3", "users=root",
    )  # fmt: skip
    try:
        leases = LeaseService(sdb, ClaimService(sdb), QuotaService(sdb))
        slurm = provisioner(cluster, tmp_path / "spool")
        planner = Planner(sdb, settings=settings(), provisioners={"slurm": slurm})
        planner.register(leases)
        now = int(time.time())
        lease = create_lease(leases, hosts, ["n3"], now, now + 90)
        job = planner.create(_spec(lease, command=("sh", "-c", "echo ran on $SLURMD_NODENAME")))

        async def scenario() -> None:
            pool = WorkerPool(planner)
            pool.start()
            try:
                await wait_state(planner, job.id, ["succeeded", "failed"], timeout=90)
            finally:
                await pool.stop()

        run(scenario(), timeout=120)
        done = planner.get(job.id)
        lines = [ln.line for ln in planner.logs(job.id)]
        assert done.state == "succeeded", (done, lines)
        assert any("Slurm refused reservation" in ln for ln in lines), lines
        assert any("moved: n3 -> n2" in ln for ln in lines), lines
        assert "ran on n2" in lines, lines
        assert "outside" in cluster.reservations()  # the operator's own is untouched
        assert cluster.reservations()[f"sb-{lease}"]["Nodes"] == "n2"  # the lease's, while it lasts
        leases.cancel(lease, project=None)
        planner.wait_released()
        assert f"sb-{lease}" not in cluster.reservations()
    finally:
        cluster.run("scontrol", "delete", "reservationname=outside", check=False)


def test_a_broker_restart_midway_finds_the_reservation_and_the_job_again(
    slurm_cluster: SlurmCluster, sdb: Database, tmp_path: Path
) -> None:
    """The pool stops while the Slurm job runs; a new planner with a new provisioner (nothing in memory)
    reconciles: it finds the reservation by the lease id and the job by its id, and the job finishes."""
    cluster = slurm_cluster
    hosts = make_site(sdb, hosts=("n1", "n2", "n3"), vcpu=2)
    leases = LeaseService(sdb, ClaimService(sdb), QuotaService(sdb))
    now = int(time.time())
    lease = create_lease(leases, hosts, ["n3"], now, now + 90)
    first = Planner(sdb, settings=settings(), provisioners={"slurm": provisioner(cluster, tmp_path / "s")})
    job = first.create(_spec(lease, command=("sh", "-c", "echo started; sleep 8; echo finished")))

    async def before() -> str | None:
        pool = WorkerPool(first)
        pool.start()
        try:
            return (await wait_state(first, job.id, ["running"], timeout=60)).run_id
        finally:
            await pool.stop()

    run_id = run(before(), timeout=90)
    assert f"sb-{lease}" in cluster.reservations()

    second = Planner(sdb, settings=settings(), provisioners={"slurm": provisioner(cluster, tmp_path / "s")})

    async def after() -> None:
        pool = WorkerPool(second, exclusive=True)
        pool.start()
        try:
            await wait_state(second, job.id, ["succeeded", "failed"], timeout=60)
        finally:
            await pool.stop()

    run(after(), timeout=90)
    done = second.get(job.id)
    lines = [ln.line for ln in second.logs(job.id)]
    assert done.state == "succeeded", (done, lines)
    assert done.run_id == run_id  # the same Slurm job, found again: nothing submitted twice
    assert [ln for ln in lines if ln in ("started", "finished")] == ["started", "finished"], lines
    assert f"sb-{lease}" in cluster.reservations()  # kept while the lease lasts
    second.register(leases)
    leases.cancel(lease, project=None)
    second.wait_released()
    assert f"sb-{lease}" not in cluster.reservations()


def _spec(lease: str, extra: dict[str, object] | None = None, command: tuple[str, ...] = ()) -> JobSpec:
    return JobSpec(lease_id=lease, provisioner="slurm", workload=Workload(command=command, extra=extra or {}))
