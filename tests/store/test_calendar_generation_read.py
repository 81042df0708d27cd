"""``CalendarRepository.generation`` runs compiled on the cursor: it must read what the plain statement
reads, inside the unit of work (its own uncommitted bumps included) and after commits, over every shard."""

from __future__ import annotations

from sqlalchemy import func, select

from slotbroker.store.db import Database
from slotbroker.store.models import CalendarStateRow
from slotbroker.store.repositories.snapshot import committed_generation
from slotbroker.store.unit_of_work import UnitOfWork


def plain(uow: UnitOfWork) -> int:
    return int(uow.session.scalar(select(func.coalesce(func.sum(CalendarStateRow.generation), 0))) or 0)


def test_the_compiled_read_is_the_plain_read(db: Database) -> None:
    with UnitOfWork(db) as uow:
        start = uow.calendar.generation()
        assert start == plain(uow)
        for key in (0, 1, 7, 12345, 7):  # several shards, one of them twice
            uow.calendar.bump(key)
            assert uow.calendar.generation() == plain(uow)
        assert uow.calendar.generation() == start + 5  # its own bumps, not yet committed
        uow.commit()
    assert committed_generation(db.engine) == start + 5
    with UnitOfWork(db, readonly=True) as uow:
        assert uow.calendar.generation() == plain(uow) == start + 5
    with UnitOfWork(db) as uow:
        uow.calendar.bump(3)
        # rolled back: never committed
    with UnitOfWork(db, readonly=True) as uow:
        assert uow.calendar.generation() == start + 5
