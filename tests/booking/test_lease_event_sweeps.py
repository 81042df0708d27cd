"""The lease event loop's periodic jobs as ``Sweep``s (decision 0049), on SQLite and PostgreSQL: the reads
of the sweeps that lead the list and the loop's due read are one read-only transaction a tick; the jobs
still run in list order, before any event fires; a plain job's writes are seen by the due read of the
same tick; a failing read or act costs its own job only (one failure counted), the rest of the tick goes
on as before."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from sqlalchemy import event, select, update
from test_leases import T0, World

from slotbroker.services.booking.lease_events import Sweep
from slotbroker.services.booking.leases import LeasePolicy
from slotbroker.store.db import Database
from slotbroker.store.models import LeaseEventRow
from slotbroker.store.unit_of_work import UnitOfWork


@pytest.fixture
def w(db: Database) -> World:
    return World(db, LeasePolicy(max_duration_s=10_000, extension_window_s=500, before_end_notice_s=30))


@pytest.fixture
def begins(db: Database) -> Iterator[list[int]]:
    """One entry per transaction begun on ``db``'s engine."""
    seen: list[int] = []

    def on_begin(_conn: Any) -> None:
        seen.append(1)

    event.listen(db.engine, "begin", on_begin)
    yield seen
    event.remove(db.engine, "begin", on_begin)


class Recorder:
    """A sweep's parts that log what ran, in order, into a shared list."""

    def __init__(self, name: str, log: list[str], found: Sequence[Any] = ()) -> None:
        self.name, self.log, self.found = name, log, list(found)
        self.read_fails = self.act_fails = False

    def read(self, uow: UnitOfWork, now_s: int) -> list[Any]:
        self.log.append(f"{self.name}.read")
        uow.session.connection()  # it reads in the transaction it is given
        if self.read_fails:
            raise RuntimeError("read failed")
        return self.found

    def act(self, now_s: int, due: Sequence[Any]) -> None:
        self.log.append(f"{self.name}.act {list(due)}")
        if self.act_fails:
            raise RuntimeError("act failed")

    def sweep(self, db: Database) -> Sweep:
        return Sweep(db, read=self.read, act=self.act)


def fired_kinds(db: Database) -> list[str]:
    with UnitOfWork(db, readonly=True) as uow:
        rows = uow.session.execute(
            select(LeaseEventRow.kind).where(LeaseEventRow.fired_at.is_not(None)).order_by(LeaseEventRow.id)
        )
        return [str(k) for (k,) in rows]


def test_an_empty_tick_with_only_sweeps_is_one_read(w: World, begins: list[int]) -> None:
    log: list[str] = []
    w.loop.periodic[:] = [Recorder("a", log).sweep(w.db), Recorder("b", log).sweep(w.db)]
    begins.clear()
    assert w.loop.tick(T0) == 0
    assert len(begins) == 1  # the sweeps' reads and the due read: one transaction (it was three)
    assert log == ["a.read", "b.read"]  # nothing found: no act


def test_a_due_lease_costs_one_read_and_its_firing_transaction(w: World, begins: list[int]) -> None:
    log: list[str] = []
    w.loop.periodic[:] = [Recorder("a", log).sweep(w.db)]
    w.create(start=T0 + 10, end=T0 + 100)
    begins.clear()
    assert w.loop.tick(T0 + 10) == 1
    assert len(begins) == 2
    assert fired_kinds(w.db) == ["start"]


def test_jobs_run_in_list_order_and_a_plain_job_splits_the_read(w: World, begins: list[int]) -> None:
    log: list[str] = []
    first, second = Recorder("first", log, ["x"]), Recorder("second", log, ["y"])
    w.loop.periodic[:] = [first.sweep(w.db), lambda now: log.append("plain"), second.sweep(w.db)]
    begins.clear()
    w.loop.tick(T0)
    assert log == ["first.read", "first.act ['x']", "plain", "second.read", "second.act ['y']"]
    assert len(begins) == 3  # first's read; second's own read; the due read after the plain job


def test_the_due_read_sees_what_a_plain_job_wrote_in_the_same_tick(w: World) -> None:
    """A plain job may write lease events (the Slurm drift sync books leases): the due read follows it."""
    w.create(start=T0 + 50, end=T0 + 100)
    with UnitOfWork(w.db, readonly=True) as uow:
        consumer_id = uow.session.scalar(select(LeaseEventRow.consumer_id).limit(1))
    assert consumer_id is not None

    def plain(now: int) -> None:
        with UnitOfWork(w.db) as uow:
            uow.session.execute(
                update(LeaseEventRow)
                .where(LeaseEventRow.consumer_id == consumer_id, LeaseEventRow.kind == "start")
                .values(due_s=now)
            )
            uow.commit()

    w.loop.periodic[:] = [Recorder("s", []).sweep(w.db), plain]
    assert w.loop.tick(T0) == 1
    assert fired_kinds(w.db) == ["start"]


def test_a_failing_read_costs_its_own_job_only(w: World) -> None:
    log: list[str] = []
    bad, good = Recorder("bad", log, ["x"]), Recorder("good", log, ["y"])
    bad.read_fails = True
    w.loop.periodic[:] = [bad.sweep(w.db), good.sweep(w.db)]
    w.create(start=T0, end=T0 + 100)
    assert w.loop.tick(T0) == 1  # the due lease still fires in this tick
    assert w.loop.failures == 1  # counted once, for the failing job
    assert log == ["bad.read", "bad.read", "good.read", "good.act ['y']"]  # shared read, then alone
    assert fired_kinds(w.db) == ["start"]


def test_a_failing_act_costs_its_own_job_only(w: World) -> None:
    log: list[str] = []
    bad, good = Recorder("bad", log, ["x"]), Recorder("good", log, ["y"])
    bad.act_fails = True
    w.loop.periodic[:] = [bad.sweep(w.db), good.sweep(w.db)]
    w.create(start=T0, end=T0 + 100)
    assert w.loop.tick(T0) == 1
    assert w.loop.failures == 1
    assert log == ["bad.read", "good.read", "bad.act ['x']", "good.act ['y']"]


def test_a_sweep_called_as_a_plain_job_reads_then_acts(db: Database) -> None:
    log: list[str] = []
    assert Recorder("r", log, ["z"]).sweep(db)(T0) is None
    assert Recorder("e", log).sweep(db)(T0) == 0
    assert log == ["r.read", "r.act ['z']", "e.read"]
