"""Planner test helpers: leases made directly in the tables or booked on a site's hosts, fast settings, an
asyncio runner, and the checks every test makes (each provision released once, nothing overbooked)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import select

from slotbroker.domain.claims import ClaimItem, ClaimRequest, ConsumerKind, ConsumerSpec, ConsumerStatus
from slotbroker.domain.inventory import Inventory
from slotbroker.domain.jobs import JobSpec, Workload
from slotbroker.domain.providers import ProviderKind
from slotbroker.services.booking.claims import ClaimService
from slotbroker.services.booking.lease_rehost import Rehost
from slotbroker.services.inventory.service import InventoryService
from slotbroker.services.planner.provisioners.base import Allocation, Provisioner
from slotbroker.services.planner.provisioners.simulated import SimulatedProvisioner
from slotbroker.services.planner.service import Planner
from slotbroker.services.planner.settings import PlannerSettings, ProvisionerPolicy, RetryPolicy
from slotbroker.store.db import Database
from slotbroker.store.models import AllocationRow, ConsumerRow, LeaseEventRow, ProviderRow, ResourceClassRow
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire import providers as cmd
from slotbroker.wire.jobs import JobOut

T = TypeVar("T")
NOW_S = int(time.time())


def make_lease(
    db: Database,
    *,
    project: str = "alpha",
    status: str = "ACTIVE",
    start_s: int | None = None,
    end_s: int | None = None,
    events: Iterable[tuple[str, int]] = (),
) -> str:
    """A lease with one allocation (2 VCPU on a host), written straight into the tables."""
    lease_id = str(uuid.uuid4())
    start = NOW_S - 60 if start_s is None else start_s
    end = NOW_S + 3600 if end_s is None else end_s
    with UnitOfWork(db) as uow:
        s = uow.session
        if s.get(ResourceClassRow, "VCPU") is None:
            s.add(ResourceClassRow(name="VCPU", kind="standard", description=""))
        host = s.execute(select(ProviderRow).where(ProviderRow.name == "host-1")).scalar_one_or_none()
        if host is None:
            host = ProviderRow(uuid=str(uuid.uuid4()), name="host-1", kind="host")
            s.add(host)
            s.flush()
        lease = ConsumerRow(
            uuid=lease_id, kind="lease", name="", project=project, status=status, start_s=start, end_s=end
        )
        s.add(lease)
        s.flush()
        s.add(
            AllocationRow(
                consumer_id=lease.id,
                provider_id=host.id,
                resource_class="VCPU",
                amount=2,
                start_s=start,
                end_s=end,
            )
        )
        for kind, due in events:
            s.add(LeaseEventRow(consumer_id=lease.id, kind=kind, due_s=due))
        uow.commit()
    return lease_id


def fast_settings(
    *,
    workers: int = 8,
    queue_policy: str = "fifo",
    claim_ttl_s: float = 5.0,
    readiness_timeout_s: float = 5.0,
    max_attempts: int = 3,
    alternates: bool = True,
    policies: dict[str, ProvisionerPolicy] | None = None,
) -> PlannerSettings:
    default = ProvisionerPolicy(
        readiness_timeout_s=readiness_timeout_s,
        poll_interval_s=0.01,
        call_timeout_s=10.0,
        retry=RetryPolicy(
            max_attempts=max_attempts, backoff_s=0.01, backoff_factor=1.0, alternates=alternates
        ),
    )
    return PlannerSettings(
        workers=workers,
        claim_ttl_s=claim_ttl_s,
        idle_poll_s=0.02,
        claim_batch=16,
        retention_s=3600.0,
        purge_interval_s=3600.0,
        max_log_lines=50,
        max_log_line_bytes=200,
        queue_policy=queue_policy,
        provisioners=policies or {},
        default_policy=default,
    )


def make_planner(
    db: Database,
    provisioners: dict[str, Provisioner],
    settings: PlannerSettings | None = None,
    rehost: Rehost | None = None,
) -> Planner:
    return Planner(db, settings=settings or fast_settings(), provisioners=provisioners, rehost=rehost)


def spec(lease_id: str, provisioner: str = "simulated", job_id: str | None = None, **kw: Any) -> JobSpec:
    workload = kw.pop("workload", Workload(command=("true",)))
    return JobSpec(lease_id=lease_id, provisioner=provisioner, workload=workload, job_id=job_id, **kw)


def run(coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


async def wait_until(check: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def wait_state(planner: Planner, job_id: str, states: Sequence[str], timeout: float = 30.0) -> JobOut:
    # 30 s: with one worker and FIFO, a job's last step can queue behind a dozen others' on a loaded CI
    # machine (10 s ran out once in CI with the run already finished); a passing test never waits it out
    deadline = time.monotonic() + timeout
    while True:
        job = await asyncio.to_thread(planner.get, job_id)
        if job.state in states:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} is {job.state}, wanted {states}: {job}")
        await asyncio.sleep(0.01)


def states_of(job: JobOut) -> list[str]:
    return [t.to_state for t in job.transitions]


# -- leases on a site's hosts (booked through ClaimService, as real leases are) ----------------------------
def make_site(
    db: Database, hosts: Sequence[str] = ("host-a", "host-b", "host-c"), vcpu: int = 4, name: str = "site-1"
) -> dict[str, str]:
    """A site ``name`` with ``hosts`` (same traits, ``vcpu`` VCPU each); host name -> uuid."""
    inventory = InventoryService(db)
    site = inventory.create_provider(cmd.CreateProvider(name=name, kind=ProviderKind.SITE))
    out: dict[str, str] = {}
    for name in hosts:
        body = cmd.CreateProvider(
            name=name,
            kind=ProviderKind.HOST,
            parent_uuid=site.uuid,  # pydantic parses the str
            inventories={"VCPU": Inventory(total=vcpu)},
        )
        out[name] = str(inventory.create_provider(body).uuid)
    return out


def book(
    db: Database,
    hosts: Sequence[str],
    *,
    vcpu: int = 2,
    status: ConsumerStatus = ConsumerStatus.ACTIVE,
    start_s: int | None = None,
    end_s: int | None = None,
    project: str = "alpha",
    extra: Sequence[ClaimItem] = (),
) -> str:
    """A lease of ``vcpu`` VCPU on each host (uuids), and the ``extra`` items, claimed like any lease."""
    start = NOW_S - 60 if start_s is None else start_s
    end = NOW_S + 3600 if end_s is None else end_s
    spec_ = ConsumerSpec(ConsumerKind.LEASE, project, start, end, status=status)
    items = (*(ClaimItem(h, "VCPU", vcpu) for h in hosts), *extra)
    return ClaimService(db).claim(ClaimRequest(spec_, items), now_s=NOW_S).consumer_uuid


def lease_rows(db: Database, lease_id: str) -> list[tuple[str, int, int, int]]:
    """(host name, amount, start_s, end_s) of the lease's allocations, in row order."""
    with UnitOfWork(db, readonly=True) as uow:
        rows = uow.session.execute(
            select(ProviderRow.name, AllocationRow.amount, AllocationRow.start_s, AllocationRow.end_s)
            .join(ProviderRow, ProviderRow.id == AllocationRow.provider_id)
            .join(ConsumerRow, ConsumerRow.id == AllocationRow.consumer_id)
            .where(ConsumerRow.uuid == lease_id)
            .order_by(AllocationRow.id)
        ).all()
    return [(str(n), int(a), int(s), int(e)) for n, a, s, e in rows]


def hosts_of(allocation: Allocation) -> tuple[str, ...]:
    return tuple(it.provider for it in allocation.items)


def released_once(sim: SimulatedProvisioner) -> None:
    assert sim.double_released() == 0, sim.releases
    assert sim.unreleased() == [], "a provision was never released"
    assert all(n == 1 for n in sim.releases.values()), sim.releases


def audit_clean(db: Database) -> None:
    """Nothing overbooked anywhere, ever (the claims' own audit)."""
    with UnitOfWork(db, readonly=True) as uow:
        assert uow.allocations.overbooked() == []


def calendar_generation(db: Database) -> int:
    with UnitOfWork(db, readonly=True) as uow:
        return uow.calendar.generation()
