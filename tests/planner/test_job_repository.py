"""Planner jobs live in the unit of work: what ``uow.jobs`` writes commits or rolls back with it, and a
unit of work nested on its connection (the lease move inside a retry's commit) is a savepoint."""

from __future__ import annotations

from planner_support import make_lease, make_planner, spec
from slotbroker.services.planner.provisioners.simulated import SimulatedProvisioner
from slotbroker.store.db import Database
from slotbroker.store.models import FindSlotJobRow
from slotbroker.store.unit_of_work import UnitOfWork


def _lines(db: Database, seq: int) -> list[str]:
    with UnitOfWork(db, readonly=True) as uow:
        return [line for _id, _at, _stream, line in uow.jobs.logs.lines(seq)]


def test_job_writes_commit_or_roll_back_with_the_unit_of_work(db: Database) -> None:
    planner = make_planner(db, {"simulated": SimulatedProvisioner()})
    created = planner.create(spec(make_lease(db), job_id="j1"))
    with UnitOfWork(db) as uow:
        job = uow.jobs.get(created.id, lock=True)
        assert job is not None
        uow.jobs.request_stop(job.seq, "cancel_requested", job.due_ms, job.updated_ms)
        uow.jobs.logs.add_lines(job.seq, job.updated_ms, [("planner", "dropped")])
        # left without commit()
    assert planner.get("j1").cancel_requested is False
    assert _lines(db, job.seq) == []
    with UnitOfWork(db) as uow:
        uow.jobs.request_stop(job.seq, "cancel_requested", job.due_ms, job.updated_ms)
        uow.jobs.logs.add_lines(job.seq, job.updated_ms, [("planner", "kept")])
        uow.commit()
    assert planner.get("j1").cancel_requested is True
    assert _lines(db, job.seq) == ["kept"]


def test_a_unit_of_work_nested_on_the_jobs_connection_is_a_savepoint(db: Database) -> None:
    planner = make_planner(db, {"simulated": SimulatedProvisioner()})
    created = planner.create(spec(make_lease(db), job_id="j2"))
    with UnitOfWork(db) as uow:
        job = uow.jobs.get(created.id, lock=True)
        assert job is not None
        uow.jobs.logs.add_lines(job.seq, 1, [("planner", "outer")])
        with UnitOfWork(db, connection=uow.jobs.connection) as inner:
            inner.jobs.logs.add_lines(job.seq, 2, [("planner", "inner, rolled back")])
        with UnitOfWork(db, connection=uow.jobs.connection) as inner:
            inner.jobs.logs.add_lines(job.seq, 3, [("planner", "inner, released")])
            inner.commit()
        uow.commit()
    assert _lines(db, job.seq) == ["outer", "inner, released"]


def test_a_find_slot_job_is_taken_over_once(db: Database) -> None:
    with UnitOfWork(db) as uow:
        uow.find_slot_jobs.add(
            FindSlotJobRow(
                id="f1",
                project="p",
                status="running",
                request="{}",
                expires_s=10_000,
                runner_until_s=100,
                runs=1,
            )
        )
        uow.commit()
    taken = []
    for _ in range(2):
        with UnitOfWork(db) as uow:
            taken.append(uow.find_slot_jobs.take_over("f1", now_s=200, runner_until_s=300, max_runs=3))
            uow.commit()
    assert taken == [True, False]  # the first take renewed the runner's claim past now
    with UnitOfWork(db, readonly=True) as uow:
        row = uow.find_slot_jobs.detached("f1")
    assert row is not None
    assert (row.status, row.runs, row.runner_until_s) == ("pending", 2, 300)
