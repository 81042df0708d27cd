"""The lease's hot reads (the created lease's view, the event loop's due and lock reads, a release's
holdings, the planner's jobs of a lease) run compiled once on the cursor (``prebuilt.run_rows``): each
answers exactly what ``Connection.execute`` of the same statement answers - the same rows, in the same
order, the same column names and the same Python types (a datetime on SQLite, a bool) - on both
databases (``db``). Skipping a result processor, or reading the wrong columns, fails these."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from sqlalchemy import bindparam, insert, select
from sqlalchemy.engine import Connection
from test_leases import T0, World

from slotbroker.engine.snapshot import AllocationSnap
from slotbroker.services.booking.lease_end import end_now
from slotbroker.services.booking.lease_schedule import KINDS
from slotbroker.services.booking.leases import LeasePolicy
from slotbroker.store import calendar_changes, tables
from slotbroker.store.calendar_changes import Holding
from slotbroker.store.db import Database
from slotbroker.store.prebuilt import Build, run_rows, session_connection
from slotbroker.store.repositories import jobs as job_rows
from slotbroker.store.repositories import lease_event_rows, leases
from slotbroker.store.unit_of_work import UnitOfWork

POLICY = LeasePolicy(before_end_notice_s=30)


def _same(conn: Connection, build: Build, n: int, params: dict[str, Any]) -> int:
    """``run_rows`` equals ``Connection.execute`` on ``build(n)``; how many rows."""
    ours = run_rows(conn, build, n, params)
    theirs = conn.execute(build(n), params).all()
    assert [tuple(r) for r in ours] == [tuple(r) for r in theirs]
    assert [[type(v) for v in r] for r in ours] == [[type(v) for v in r] for r in theirs]
    assert [r._mapping for r in ours] == [dict(r._mapping) for r in theirs]
    assert [list(r._fields) for r in ours] == [list(r._fields) for r in theirs]
    return len(ours)


def _world(db: Database) -> tuple[World, list[str]]:
    """Leases in every state the hot reads see: pending, started, ended early, cancelled."""
    world = World(db, POLICY)
    ids = [world.create(start=T0 + 10 * i, end=T0 + 100 + 10 * i, vcpu=2).id for i in range(4)]
    world.loop.tick(T0 + 15)  # two start
    end_now(world.leases, ids[0], now_s=T0 + 20)
    world.leases.cancel(ids[3], project="sci")
    return world, ids


def test_the_lease_reads_answer_what_execute_answers(db: Database) -> None:
    world, ids = _world(db)
    with UnitOfWork(db) as uow:
        conn = session_connection(uow.session)
        cids = [int(uow.leases.find(i).id) for i in ids]
        for lease_id in [*ids, "no-such-lease"]:
            assert _same(conn, leases._find, 0, {"lease_id": lease_id}) == (lease_id in ids)
            assert _same(conn, leases._find_locked, 0, {"lease_id": lease_id}) == (lease_id in ids)
        for cid in [*cids, -1]:
            _same(conn, leases._lock_to_fire, 0, {"cid": cid})
        for n in (1, 2, 4):
            params = {f"k{i}": cids[min(i, len(cids) - 1)] for i in range(n)}
            assert _same(conn, leases._allocations_of, n, params) > 0
            assert _same(conn, lease_event_rows._events_of, n, params) > 0
        for now in (T0, T0 + 15, T0 + 200):
            due = lease_event_rows._events_due(KINDS)
            _same(conn, due, 0, {"now": now, "limit": 10})
            for cid in cids:
                _same(conn, lease_event_rows._lock_due(KINDS), 0, {"cid": cid, "now": now})
    fired = [e for e in world.leases.get(ids[0], project="sci").events if e.fired_at is not None]
    assert fired
    assert all(e.fired_at is not None and e.fired_at.tzinfo is not None for e in fired)  # typed, as before


def test_the_jobs_of_a_lease_answer_what_execute_answers(db: Database) -> None:
    _, ids = _world(db)
    with UnitOfWork(db) as uow:
        conn = session_connection(uow.session)
        for i, step in enumerate(["start", None, "run"]):
            conn.execute(
                insert(tables.jobs).values(
                    id=f"job{i}",
                    project="sci",
                    lease_uuid=ids[1],
                    provisioner="noop",
                    workload="{}",
                    state="PENDING",
                    step=step,
                    due_ms=i,
                    created_ms=i,
                    updated_ms=i,
                    cancel_requested=i == 2,
                )
            )
        for build in (job_rows._live_of_lease, job_rows._live_of_lease_locked):
            assert _same(conn, build, 0, {"lease_uuid": ids[1]}) == 2
        assert [j.id for j in uow.jobs.live_of_lease(ids[1])] == ["job0", "job2"]
        assert [j.cancel_requested for j in uow.jobs.live_of_lease(ids[1])] == [False, True]


_HOLDINGS_BY_EXECUTE = (
    select(
        tables.consumers.c.id, tables.consumers.c.status, tables.consumers.c.kind,
        tables.consumers.c.expires_s, tables.allocations.c.provider_id,
        tables.allocations.c.resource_class, tables.allocations.c.amount, tables.allocations.c.start_s,
        tables.allocations.c.end_s, tables.allocations.c.vlan_tag,
    )
    .select_from(
        tables.consumers.outerjoin(
            tables.allocations, tables.allocations.c.consumer_id == tables.consumers.c.id
        )
    )
    .where(tables.consumers.c.id.in_(bindparam("ids", expanding=True)))
)  # fmt: skip


def _holdings_by_execute(uow: UnitOfWork, ids: list[int]) -> list[Holding]:
    """The reference: the same read through ``Session.execute`` with an expanding list."""
    if not ids:
        return []
    found: dict[int, tuple[str, str, int | None]] = {}
    rows: dict[int, list[Any]] = {}
    for cid, status, kind, expires, *row in uow.session.execute(
        _HOLDINGS_BY_EXECUTE, {"ids": sorted(set(ids))}
    ):
        found[cid] = (status, kind, expires)
        got = rows.setdefault(cid, [])
        if row[0] is not None:
            got.append(tuple(row))
    return [Holding(cid, *found[cid], tuple(AllocationSnap(*r) for r in rows[cid])) for cid in sorted(found)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(picks=hs.lists(hs.integers(min_value=-1, max_value=5), max_size=7))
def test_holdings_are_what_the_reference_read_answers(db: Database, picks: list[int]) -> None:
    if not hasattr(db, "_prebuilt_reads_ids"):
        _, lease_ids = _world(db)
        with UnitOfWork(db, readonly=True) as uow:
            db._prebuilt_reads_ids = [int(uow.leases.find(i).id) for i in lease_ids]  # type: ignore[attr-defined]
    cids: list[int] = db._prebuilt_reads_ids  # type: ignore[attr-defined]
    # -1: a consumer that does not exist; 4 and 5: beyond the leases (holds or nothing)
    ids = [cids[p] if 0 <= p < len(cids) else 10_000 + p for p in picks]
    with UnitOfWork(db, readonly=True) as uow:
        assert calendar_changes.holdings(uow.session, ids) == _holdings_by_execute(uow, ids)
