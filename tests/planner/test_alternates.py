"""Retries move the lease: after a failed attempt the lease's capacity moves off the hosts that attempt
used onto alternates of the same site, booked in the transaction that commits the retry (SQLite and
PostgreSQL through the ``db`` fixture, the simulated provisioner as the only fake).

The simulated provisioner's ``outcome`` sees each attempt's allocation, so "host-a is broken" is a rule,
not a probability. Every test checks each provision was released exactly once and that nothing was ever
overbooked (the claims' own audit).
"""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from planner_support import (
    NOW_S,
    audit_clean,
    book,
    calendar_generation,
    fast_settings,
    hosts_of,
    lease_rows,
    make_planner,
    make_site,
    released_once,
    run,
    spec,
    wait_state,
)
from slotbroker.domain.claims import ClaimItem, ConsumerStatus
from slotbroker.domain.inventory import Inventory
from slotbroker.domain.providers import ProviderKind
from slotbroker.services.booking.claims import ClaimService
from slotbroker.services.booking.lease_rehost import LeaseRehoster, Rehosted
from slotbroker.services.booking.leases import LeaseService
from slotbroker.services.booking.quotas import QuotaService
from slotbroker.services.inventory.network import NetworkService
from slotbroker.services.inventory.service import InventoryService
from slotbroker.services.planner.provisioners.base import Allocation, ProvisionerError
from slotbroker.services.planner.provisioners.simulated import Outcome, SimulatedConfig, SimulatedProvisioner
from slotbroker.services.planner.service import Planner
from slotbroker.services.planner.worker import WorkerPool
from slotbroker.services.retry import MAX_ATTEMPTS
from slotbroker.store.db import Database
from slotbroker.store.models import ConsumerRow
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire import providers as cmd
from slotbroker.wire.leases import UpdateLease

Tried = list[tuple[str, tuple[str, ...]]]


def failing_on(*broken: str, tried: Tried | None = None) -> Outcome:
    """An outcome: a provision fails when its allocation names one of the ``broken`` hosts."""

    def outcome(allocation: Allocation, key: str) -> str:
        if tried is not None:
            tried.append((key, hosts_of(allocation)))
        return "fail" if set(hosts_of(allocation)) & set(broken) else "ready"

    return outcome


def live(rows: list[tuple[str, int, int, int]]) -> list[tuple[str, int, int, int]]:
    now = int(time.time())
    return [r for r in rows if r[3] > now]


def finish(planner: Planner, job_id: str, states: list[str]) -> tuple[str, int, str, list[str]]:
    """Run the pool until the job reaches one of ``states``: (state, attempt, error, log lines)."""

    async def scenario() -> tuple[str, int, str, list[str]]:
        pool = WorkerPool(planner)
        pool.start()
        done = await wait_state(planner, job_id, states)
        await pool.stop()
        return done.state, done.attempt, done.error or "", [ln.line for ln in planner.logs(job_id)]

    return run(scenario())


def test_failure_on_a_host_moves_the_lease_to_an_alternate(db: Database) -> None:
    """The lease leaves host-a for host-b in the retry's commit; being ACTIVE, it keeps its past on
    host-a (cut where host-b starts: 2 VCPU all along, never 4); the retry provisions host-b."""
    tried: Tried = []
    sim = SimulatedProvisioner(SimulatedConfig(outcome=failing_on("host-a", tried=tried)))
    planner = make_planner(db, {"simulated": sim}, fast_settings(max_attempts=3))
    hosts = make_site(db)
    lease = book(db, [hosts["host-a"]])
    job = planner.create(spec(lease))

    state, attempt, _, logs = finish(planner, job.id, ["succeeded", "failed"])

    assert (state, attempt) == ("succeeded", 2)
    assert tried == [(f"{job.id}#1", ("host-a",)), (f"{job.id}#2", ("host-b",))]
    old, new = lease_rows(db, lease)
    assert (old[0], old[1], old[2]) == ("host-a", 2, NOW_S - 60)
    assert (new[0], new[1], new[3]) == ("host-b", 2, NOW_S + 3600)
    assert old[3] == new[2]
    assert NOW_S <= new[2] <= int(time.time())
    assert any("moved: host-a -> host-b" in line for line in logs)
    assert any("on alternate: host-b allocation" in line for line in logs)
    assert planner.get(job.id).tried_hosts == [hosts["host-a"]]  # what GET /v1/jobs/{id} shows
    assert {sim.key_of(p) for p in sim.releases} == {f"{job.id}#1", f"{job.id}#2"}
    released_once(sim)
    audit_clean(db)


def test_every_host_failing_fails_after_trying_each_once(db: Database) -> None:
    """Hosts a, b, c all fail: three attempts (not ``max_attempts``), each on a host not tried before,
    then the job fails; the lease still holds exactly one host's capacity at any time."""
    tried: Tried = []
    sim = SimulatedProvisioner(SimulatedConfig(outcome=failing_on("host-a", "host-b", "host-c", tried=tried)))
    planner = make_planner(db, {"simulated": sim}, fast_settings(max_attempts=5))
    hosts = make_site(db)
    lease = book(db, [hosts["host-a"]])
    job = planner.create(spec(lease))

    state, attempt, error, _ = finish(planner, job.id, ["succeeded", "failed"])

    assert (state, attempt) == ("failed", 3)
    assert "no alternate host had capacity" in error
    assert [hs for _, hs in tried] == [("host-a",), ("host-b",), ("host-c",)]
    rows = lease_rows(db, lease)
    # host-a's past, host-b's (gone when both moves fell in the same second: nothing of it had started)
    assert [r[0] for r in rows] in (["host-a", "host-b", "host-c"], ["host-a", "host-c"])
    assert rows[0][2] == NOW_S - 60
    assert all(a[3] == b[2] for a, b in itertools.pairwise(rows))  # back to back
    assert live(rows) == [("host-c", 2, rows[-1][2], NOW_S + 3600)]
    assert sim.created == 3
    released_once(sim)
    audit_clean(db)


def test_alternates_fully_booked_fail_without_moving(db: Database) -> None:
    """Other leases hold host-b and host-c: no alternate has room, the retry becomes a failure and
    nothing about the lease (or the calendar) changes."""
    sim = SimulatedProvisioner(SimulatedConfig(outcome=failing_on("host-a")))
    planner = make_planner(db, {"simulated": sim}, fast_settings(max_attempts=3))
    hosts = make_site(db)
    lease = book(db, [hosts["host-a"]])
    book(db, [hosts["host-b"], hosts["host-c"]], vcpu=4, project="beta")
    before, generation = lease_rows(db, lease), calendar_generation(db)
    job = planner.create(spec(lease))

    state, attempt, error, logs = finish(planner, job.id, ["succeeded", "failed"])

    assert (state, attempt) == ("failed", 1)
    assert "provision failed" in error
    assert "no alternate host had capacity" in error
    assert any("giving up" in line for line in logs)
    assert lease_rows(db, lease) == before
    assert calendar_generation(db) == generation
    assert sim.created == 1
    released_once(sim)
    audit_clean(db)


def test_an_alternate_without_room_is_skipped_for_the_next(db: Database) -> None:
    """host-b has 1 VCPU free (the lease needs 2): the claim refuses it and host-c takes the lease."""
    tried: Tried = []
    sim = SimulatedProvisioner(SimulatedConfig(outcome=failing_on("host-a", tried=tried)))
    planner = make_planner(db, {"simulated": sim}, fast_settings(max_attempts=3))
    hosts = make_site(db)
    lease = book(db, [hosts["host-a"]])
    book(db, [hosts["host-b"]], vcpu=3, project="beta")
    job = planner.create(spec(lease))

    state, attempt, _, _ = finish(planner, job.id, ["succeeded", "failed"])

    assert (state, attempt) == ("succeeded", 2)
    assert tried[-1] == (f"{job.id}#2", ("host-c",))
    assert [r[0] for r in live(lease_rows(db, lease))] == ["host-c"]
    released_once(sim)
    audit_clean(db)


def test_moving_disabled_by_policy_retries_in_place(db: Database) -> None:
    tried: Tried = []
    sim = SimulatedProvisioner(SimulatedConfig(outcome=failing_on("host-a", tried=tried)))
    planner = make_planner(db, {"simulated": sim}, fast_settings(max_attempts=3, alternates=False))
    hosts = make_site(db)
    lease = book(db, [hosts["host-a"]])
    before = lease_rows(db, lease)
    job = planner.create(spec(lease))

    state, attempt, error, _ = finish(planner, job.id, ["succeeded", "failed"])

    assert (state, attempt) == ("failed", 3)
    assert "no alternate" not in error
    assert [hs for _, hs in tried] == [("host-a",)] * 3
    assert lease_rows(db, lease) == before
    released_once(sim)


def test_a_lease_on_two_hosts_moves_both_to_two_alternates(db: Database) -> None:
    """The provisioner cannot say which host failed, so every host of the attempt moves, each to a
    host of its own."""
    tried: Tried = []
    sim = SimulatedProvisioner(SimulatedConfig(outcome=failing_on("host-a", tried=tried)))
    planner = make_planner(db, {"simulated": sim}, fast_settings(max_attempts=3))
    hosts = make_site(db, ("host-a", "host-b", "host-c", "host-d"))
    lease = book(db, [hosts["host-a"], hosts["host-b"]])
    job = planner.create(spec(lease))

    state, attempt, _, logs = finish(planner, job.id, ["succeeded", "failed"])

    assert (state, attempt) == ("succeeded", 2)
    assert [hs for _, hs in tried] == [("host-a", "host-b"), ("host-c", "host-d")]
    assert sorted(r[0] for r in live(lease_rows(db, lease))) == ["host-c", "host-d"]
    assert any("host-a -> host-c, host-b -> host-d" in line for line in logs)
    released_once(sim)
    audit_clean(db)


class _DownOnHostA(SimulatedProvisioner):
    """``provision`` raises (nothing created, no provision id) when the allocation names host-a."""

    async def provision(self, allocation: Allocation, key: str) -> str:
        if "host-a" in hosts_of(allocation):
            raise ProvisionerError("host-a does not answer")
        return await super().provision(allocation, key)


def test_a_provision_call_that_raises_moves_the_lease_too(db: Database) -> None:
    sim = _DownOnHostA()
    planner = make_planner(db, {"simulated": sim}, fast_settings(max_attempts=3))
    hosts = make_site(db)
    lease = book(db, [hosts["host-a"]])
    job = planner.create(spec(lease))

    state, attempt, _, _ = finish(planner, job.id, ["succeeded", "failed"])

    assert (state, attempt) == ("succeeded", 2)
    assert sim.created == 1  # only on host-b
    assert [r[0] for r in live(lease_rows(db, lease))] == ["host-b"]
    released_once(sim)
    audit_clean(db)


def test_a_lease_other_jobs_use_is_not_moved(db: Database) -> None:
    """A job running on the lease's host keeps it: a sibling's retry stays in place instead of pulling
    the capacity from under it."""
    sim = SimulatedProvisioner(SimulatedConfig(outcome=lambda a, k: "fail" if k == "flaky#1" else "ready"))
    gate = sim.gate("run")
    planner = make_planner(db, {"simulated": sim}, fast_settings(max_attempts=3))
    hosts = make_site(db)
    lease = book(db, [hosts["host-a"]])
    before = lease_rows(db, lease)

    async def scenario() -> None:
        pool = WorkerPool(planner)
        pool.start()
        planner.create(spec(lease, job_id="busy"))
        await wait_state(planner, "busy", ["running"])
        del sim.gates["run"]  # runs submitted from now on finish at once; "busy" still waits for it
        planner.create(spec(lease, job_id="flaky"))
        flaky = await wait_state(planner, "flaky", ["succeeded", "failed"])
        assert (flaky.state, flaky.attempt) == ("succeeded", 2)
        assert any("in use by job busy" in ln.line for ln in planner.logs("flaky"))
        gate.open()
        assert (await wait_state(planner, "busy", ["succeeded", "failed"])).state == "succeeded"
        await pool.stop()

    run(scenario())
    assert lease_rows(db, lease) == before
    released_once(sim)


class _Deadlock(Exception):
    sqlstate = "40P01"  # deadlock_detected: retryable


class DeadlockingRehost:
    """The real rehost, after ``times`` deadlocks (as PostgreSQL reports them)."""

    def __init__(self, real: LeaseRehoster, times: int) -> None:
        self.real = real
        self.left = times

    def __call__(self, conn: Connection, lease: str, avoid: frozenset[str], now_s: int) -> Rehosted | None:
        if self.left > 0:
            self.left -= 1
            raise OperationalError("rehost", {}, _Deadlock("deadlock detected"))
        return self.real(conn, lease, avoid, now_s)


def test_a_move_that_keeps_deadlocking_is_parked_not_lost_or_released_twice(db: Database) -> None:
    """Every commit of the move loses (retried ``MAX_ATTEMPTS`` times): the retry waits at ``release``
    with the release recorded, comes back, moves the lease and succeeds - one release per provision."""
    sim = SimulatedProvisioner(SimulatedConfig(outcome=failing_on("host-a")))
    rehost = DeadlockingRehost(LeaseRehoster(ClaimService(db)), MAX_ATTEMPTS + 1)
    planner = make_planner(db, {"simulated": sim}, fast_settings(max_attempts=3), rehost=rehost)
    hosts = make_site(db)
    lease = book(db, [hosts["host-a"]])
    job = planner.create(spec(lease))

    state, attempt, _, logs = finish(planner, job.id, ["succeeded", "failed"])

    assert (state, attempt) == ("succeeded", 2)
    assert rehost.left == 0
    assert any("lost to concurrent writers" in line for line in logs)
    assert [r[0] for r in live(lease_rows(db, lease))] == ["host-b"]
    assert sim.created == 2
    released_once(sim)
    audit_clean(db)


# -- the rehoster on its own ---------------------------------------------------------------------------------
def rehost(
    db: Database, lease: str, avoid: frozenset[str] = frozenset(), now_s: int = NOW_S
) -> Rehosted | None:
    with UnitOfWork(db) as uow:
        moved = LeaseRehoster(ClaimService(db))(uow.jobs.connection, lease, avoid, now_s)
        uow.commit()
    return moved


def consumers(db: Database) -> int:
    with UnitOfWork(db, readonly=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(ConsumerRow)) or 0)


def test_a_pending_lease_is_moved_whole(db: Database) -> None:
    """Nothing of a PENDING lease has happened yet: its old rows go, the new ones cover [start, end);
    its generation moves (a client's view is stale); hosts to avoid are skipped."""
    hosts = make_site(db)
    start, end = NOW_S + 3600, NOW_S + 7200
    lease = book(db, [hosts["host-a"]], status=ConsumerStatus.PENDING, start_s=start, end_s=end)
    with UnitOfWork(db, readonly=True) as uow:
        generation = uow.session.scalar(select(ConsumerRow.generation).where(ConsumerRow.uuid == lease))
    count = consumers(db)

    moved = rehost(db, lease, avoid=frozenset({hosts["host-b"]}))

    assert moved is not None
    assert moved.describe() == "host-a -> host-c"
    assert moved.left == {hosts["host-a"]}
    assert lease_rows(db, lease) == [("host-c", 2, start, end)]
    assert consumers(db) == count  # the temporary consumer is gone
    with UnitOfWork(db, readonly=True) as uow:
        assert (
            uow.session.scalar(select(ConsumerRow.generation).where(ConsumerRow.uuid == lease))
            == (generation or 0) + 1
        )
    audit_clean(db)


def test_a_late_pending_lease_keeps_no_past(db: Database) -> None:
    """PENDING past its start (the start event is late): nothing of it has happened, so its old rows go
    and the new ones start now."""
    hosts = make_site(db)
    lease = book(db, [hosts["host-a"]], status=ConsumerStatus.PENDING)  # from NOW_S - 60

    assert rehost(db, lease) is not None

    assert lease_rows(db, lease) == [("host-b", 2, NOW_S, NOW_S + 3600)]


def test_no_room_anywhere_writes_nothing(db: Database) -> None:
    hosts = make_site(db)
    lease = book(db, [hosts["host-a"]])
    book(db, [hosts["host-b"], hosts["host-c"]], vcpu=3, project="beta")
    before, generation, count = lease_rows(db, lease), calendar_generation(db), consumers(db)

    assert rehost(db, lease) is None

    assert (lease_rows(db, lease), calendar_generation(db), consumers(db)) == (before, generation, count)


def test_only_host_rows_move(db: Database) -> None:
    """A facility port's VLAN (like a link's bandwidth) stays where it is; only the host moves."""
    hosts = make_site(db)
    port = NetworkService(db).create_port(
        cmd.CreateFacilityPort(name="port-1", site="site-1", vlans="100-200", bandwidth_gbps=10)
    )
    lease = book(db, [hosts["host-a"]], extra=[ClaimItem(str(port.uuid), "VLAN", 1, 150)])
    (vlan_row,) = [r for r in lease_rows(db, lease) if r[0] != "host-a"]

    moved = rehost(db, lease)

    assert moved is not None
    assert moved.describe() == "host-a -> host-b"
    assert sorted(r[0] for r in live(lease_rows(db, lease))) == sorted([vlan_row[0], "host-b"])
    assert vlan_row in lease_rows(db, lease)
    audit_clean(db)


def test_nothing_moves_without_hosts_or_with_their_devices(db: Database) -> None:
    """Nothing to move (no host left, no lease) or nothing that can move (a device of the host cannot
    follow it): the answer says why and nothing is written."""
    hosts = make_site(db)
    device = InventoryService(db).create_provider(
        cmd.CreateProvider(
            name="gpu-1",
            kind=ProviderKind.DEVICE,
            parent_uuid=hosts["host-a"],  # pydantic parses the str
            inventories={"VCPU": Inventory(total=4)},
        )
    )
    with_device = book(db, [hosts["host-a"]], extra=[ClaimItem(str(device.uuid), "VCPU", 1)])
    before = lease_rows(db, with_device)
    moved = rehost(db, with_device)
    assert moved is not None
    assert moved.moves == ()
    assert "gpu-1" in moved.reason
    assert lease_rows(db, with_device) == before

    assert rehost(db, "no-such-lease") == Rehosted(reason="the lease is gone")
    ended = rehost(db, book(db, [hosts["host-b"]]), now_s=NOW_S + 7200)  # its rows have ended
    assert ended == Rehosted(reason="the lease holds no host now")


def test_a_moved_active_lease_extends_on_its_new_host_only(db: Database) -> None:
    """After a move, the old host's past rows are history: extending the lease claims more time on the
    host it holds now, even when the old host is booked out for that time."""
    hosts = make_site(db)
    start, end = NOW_S - 60, NOW_S + 3600
    lease = book(db, [hosts["host-a"]], start_s=start, end_s=end)
    assert rehost(db, lease) is not None  # ACTIVE: host-a keeps [start, NOW_S), host-b has the rest
    book(db, [hosts["host-a"]], vcpu=4, start_s=end, end_s=end + 3600, project="beta")  # host-a full
    leases = LeaseService(db, ClaimService(db), QuotaService(db))
    now = NOW_S + 1  # the extension window (2 days by default) is open
    view = leases.get(lease, project=None)

    leases.update(
        lease,
        UpdateLease(generation=view.generation, end=datetime.fromtimestamp(end + 1800, UTC)),
        project=None,
        now_s=now,
    )

    assert lease_rows(db, lease) == [("host-a", 2, start, NOW_S), ("host-b", 2, NOW_S, end + 1800)]
    audit_clean(db)
