"""``UnitOfWork.after_commit``: a callback runs once the commit succeeded, never for work rolled back
(the planner's lease hook frees a Slurm reservation this way, after the lease's end is durable)."""

from __future__ import annotations

from slotbroker.store.db import Database
from slotbroker.store.unit_of_work import UnitOfWork


def test_callbacks_run_after_a_commit_only_once(db: Database) -> None:
    ran: list[str] = []
    with UnitOfWork(db) as uow:
        uow.after_commit(lambda: ran.append("first"))
        assert ran == []
        uow.commit()
        assert ran == ["first"]
        uow.commit()  # a unit of work may go on: the callback is not run again
        assert ran == ["first"]


def test_rolled_back_work_runs_no_callback(db: Database) -> None:
    ran: list[str] = []
    with UnitOfWork(db) as uow:
        uow.after_commit(lambda: ran.append("left"))
    with UnitOfWork(db) as uow:
        uow.after_commit(lambda: ran.append("rolled back"))
        uow.rollback()
        uow.commit()
    assert ran == []
