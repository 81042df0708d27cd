"""A lease's Slurm reservation lives as long as the lease, against the real slurmctld (``slurm_cluster``).

The regression: the provisioner's ``release`` deleted ``sb-<lease>`` as soon as the lease's last job
ended, while the broker still held the nodes for the rest of the lease, so Slurm was free to give them
to someone else. Now a job ending leaves the reservation alone while its lease lasts, and the lease's
end (early, through ``end_now``) or its cancel deletes it, also when no job is running then.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from planner_support import fast_settings, make_site, run, wait_state
from slotbroker.domain.jobs import JobSpec, Workload
from slotbroker.services.booking.claims import ClaimService
from slotbroker.services.booking.lease_end import end_now
from slotbroker.services.booking.leases import LeaseService
from slotbroker.services.booking.quotas import QuotaService
from slotbroker.services.planner.provisioners.base import Allocation, AllocationItem
from slotbroker.services.planner.provisioners.slurm import SlurmProvisioner
from slotbroker.services.planner.provisioners.slurm_config import SlurmConfig
from slotbroker.services.planner.service import Planner
from slotbroker.services.planner.settings import ProvisionerPolicy, RetryPolicy
from slotbroker.services.planner.worker import WorkerPool
from slotbroker.store import migrate
from slotbroker.store.db import Database
from slotbroker.wire.leases import CreateLease, LeaseItemSpec
from slurm_cluster import SlurmCluster

pytestmark = pytest.mark.slurm

POLICY = ProvisionerPolicy(
    readiness_timeout_s=30.0,
    poll_interval_s=0.5,
    call_timeout_s=30.0,
    retry=RetryPolicy(max_attempts=1, backoff_s=0.2, backoff_factor=1.0),
)


@pytest.fixture
def world(
    slurm_cluster: SlurmCluster, tmp_path: Path
) -> Iterator[tuple[LeaseService, Planner, dict[str, str]]]:
    """A SQLite broker whose hosts n1..n3 are the cluster's nodes; the planner hears the lease events."""
    db = Database(f"sqlite:///{tmp_path}/slotbroker.db")
    migrate.upgrade(db.engine)
    hosts = make_site(db, hosts=("n1", "n2", "n3"), vcpu=2)
    leases = LeaseService(db, ClaimService(db), QuotaService(db))
    config = SlurmConfig(conf=str(slurm_cluster.conf), spool=str(tmp_path / "spool"), users="root")
    planner = Planner(
        db,
        settings=fast_settings(workers=2, policies={"slurm": POLICY}),
        provisioners={"slurm": SlurmProvisioner(config)},
    )
    planner.register(leases)
    yield leases, planner, hosts
    planner.wait_released()
    db.dispose()


def create_lease(leases: LeaseService, hosts: dict[str, str], names: list[str], start: int, end: int) -> str:
    items = [LeaseItemSpec(provider_uuid=uuid.UUID(hosts[n]), resource_class="VCPU", amount=1) for n in names]
    window = {"start": datetime.fromtimestamp(start, UTC), "end": datetime.fromtimestamp(end, UTC)}
    return str(leases.create(CreateLease(**window, items=items), project="alpha").id)


def job(planner: Planner, lease: str, say: str) -> str:
    workload = Workload(command=("sh", "-c", f"echo {say}"))
    return planner.create(JobSpec(lease_id=lease, provisioner="slurm", workload=workload)).id


def run_to_success(planner: Planner, job_id: str) -> None:
    async def scenario() -> None:
        pool = WorkerPool(planner)
        pool.start()
        try:
            await wait_state(planner, job_id, ["succeeded", "failed", "expired", "canceled"], timeout=90)
        finally:
            await pool.stop()

    run(scenario(), timeout=120)
    done = planner.get(job_id)
    assert done.state == "succeeded", (done, [ln.line for ln in planner.logs(job_id)])


def test_jobs_ending_early_keep_the_reservation_until_the_lease_ends(
    slurm_cluster: SlurmCluster, world: tuple[LeaseService, Planner, dict[str, str]]
) -> None:
    """Two jobs one after the other in one lease: after each ends, sb-<lease> is still there (the second
    runs in it); ending the lease early deletes it."""
    leases, planner, hosts = world
    now = int(time.time())
    lease = create_lease(leases, hosts, ["n1", "n2"], now, now + 300)
    name = f"sb-{lease}"

    run_to_success(planner, job(planner, lease, "first"))
    assert name in slurm_cluster.reservations()  # the lease holds n1, n2 for 5 minutes more

    run_to_success(planner, job(planner, lease, "second"))
    assert name in slurm_cluster.reservations()

    end_now(leases, lease, now_s=int(time.time()))
    planner.wait_released()
    assert name not in slurm_cluster.reservations()


def test_cancelling_a_lease_with_no_job_running_deletes_its_reservation(
    slurm_cluster: SlurmCluster, world: tuple[LeaseService, Planner, dict[str, str]]
) -> None:
    """A lease whose job has finished, and a PENDING lease whose reservation was made in advance with no
    job at all (as the drift sync mirrors one): cancelling either deletes its reservation."""
    leases, planner, hosts = world
    now = int(time.time())
    worked = create_lease(leases, hosts, ["n3"], now, now + 300)
    run_to_success(planner, job(planner, worked, "done"))
    ahead = create_lease(leases, hosts, ["n3"], now + 600, now + 900)
    slurm = planner.provisioners["slurm"]
    allocation = Allocation(
        ahead, "alpha", now + 600, now + 900, (AllocationItem("n3", "VCPU", 1),), hosts=("n3",)
    )
    run(slurm.provision(allocation, "sync"))
    assert {f"sb-{worked}", f"sb-{ahead}"} <= set(slurm_cluster.reservations())

    leases.cancel(worked, project=None)
    leases.cancel(ahead, project=None)
    planner.wait_released()

    assert not {f"sb-{worked}", f"sb-{ahead}"} & set(slurm_cluster.reservations())
