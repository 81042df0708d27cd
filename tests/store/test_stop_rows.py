"""Stopping allocation rows at "now" is one rule (``store.repositories.usage.stop_rows``) for a lease that
ends and for rows moved off a failed host: future rows go, running rows end now, rows already over stay.
Both databases."""

from __future__ import annotations

from sqlalchemy import select

from planner_support import NOW_S, make_lease
from slotbroker.store.db import Database
from slotbroker.store.tables import allocations, consumers
from slotbroker.store.unit_of_work import UnitOfWork


def rows_of(db: Database, lease_id: str) -> list[tuple[int, int, int]]:
    with UnitOfWork(db, readonly=True) as uow:
        cid = uow.session.execute(select(consumers.c.id).where(consumers.c.uuid == lease_id)).scalar_one()
        return [
            (int(r.id), int(r.start_s), int(r.end_s))
            for r in uow.session.execute(
                select(allocations.c.id, allocations.c.start_s, allocations.c.end_s).where(
                    allocations.c.consumer_id == cid
                )
            )
        ]


def test_rows_moved_off_a_host_stop_like_a_lease_that_ends(db: Database) -> None:
    past = make_lease(db, start_s=NOW_S - 7200, end_s=NOW_S - 3600)
    running = make_lease(db, start_s=NOW_S - 60, end_s=NOW_S + 3600)
    future = make_lease(db, start_s=NOW_S + 600, end_s=NOW_S + 3600)
    ids = [r[0] for lease in (past, running, future) for r in rows_of(db, lease)]
    with UnitOfWork(db) as uow:
        uow.leases.end_rows_at(ids, NOW_S)
        uow.commit()
    assert [r[1:] for r in rows_of(db, past)] == [(NOW_S - 7200, NOW_S - 3600)]  # over: not stretched
    assert [r[1:] for r in rows_of(db, running)] == [(NOW_S - 60, NOW_S)]
    assert rows_of(db, future) == []
