"""What units of work tell the calendar cache (``store/calendar_changes.py``, decision 0030): the Python
liveness rule equals the SQL one, complete and incomplete commits, nested units of work, and the
cache's ticket horizon (a commit a rebuild may already have read is never replayed on top of it)."""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from slotbroker.domain.claims import ConsumerKind, ConsumerStatus
from slotbroker.domain.inventory import Inventory
from slotbroker.domain.providers import ProviderKind
from slotbroker.services.booking.claims import ClaimService
from slotbroker.services.find_slot.calendar_cache import CalendarCache
from slotbroker.services.inventory.service import InventoryService
from slotbroker.store import migrate, tables
from slotbroker.store.calendar_changes import CalendarChanges
from slotbroker.store.claims import insert_consumer
from slotbroker.store.db import Database
from slotbroker.store.repositories.usage import holds_capacity, live_consumer
from slotbroker.store.unit_of_work import UnitOfWork, listen
from slotbroker.wire import providers as cmd

_names = itertools.count()


class Recorder:
    def __init__(self) -> None:
        self.tickets = itertools.count()
        self.seen: list[CalendarChanges | None] = []

    def committing(self) -> int:
        return next(self.tickets)

    def committed(self, ticket: int, changes: CalendarChanges | None) -> None:
        self.seen.append(changes)


consumers = st.tuples(
    st.sampled_from([s.value for s in ConsumerStatus]),
    st.sampled_from([k.value for k in ConsumerKind]),
    st.one_of(st.none(), st.integers(0, 20)),
)


@given(rows=st.lists(consumers, min_size=1, max_size=12), now=st.integers(0, 20))
@settings(max_examples=40, deadline=None)
def test_holds_capacity_is_live_consumer(rows: list[tuple[str, str, int | None]], now: int) -> None:
    db = Database("sqlite://")
    migrate.upgrade(db.engine)
    try:
        with UnitOfWork(db) as uow:
            ids = []
            for status, kind, expires in rows:
                values = {
                    "uuid": str(uuid.uuid4()), "kind": kind, "project": "p", "status": status,
                    "start_s": 0, "end_s": 10, "expires_s": expires,
                }  # fmt: skip
                ids.append(insert_consumer(uow.session, values))
            c = tables.consumers.c
            live = set(uow.session.scalars(select(c.id).where(live_consumer(now))))
        want = {i for i, (s, k, e) in zip(ids, rows, strict=True) if holds_capacity(s, k, e, now)}
        assert live == want
    finally:
        db.dispose()


def _world(tmp_path: Path) -> tuple[Database, Recorder, str]:
    db = Database(f"sqlite:///{tmp_path}/c.db")
    migrate.upgrade(db.engine)
    recorder = Recorder()
    listen(db, recorder)
    inv = InventoryService(db)
    site = inv.create_provider(cmd.CreateProvider(name=f"S{next(_names)}", kind=ProviderKind.SITE)).uuid
    body = cmd.CreateProvider(
        name=f"h{next(_names)}",
        kind=ProviderKind.HOST,
        parent_uuid=site,
        inventories={"VCPU": Inventory(total=4)},
    )
    return db, recorder, str(inv.create_provider(body).uuid)


def test_claims_are_complete_inventory_is_not(tmp_path: Path) -> None:
    from slotbroker.domain.claims import ClaimItem, ClaimRequest, ConsumerSpec

    db, recorder, host = _world(tmp_path)
    assert recorder.seen  # inventory writes: told, never complete
    assert not any(c is not None and c.complete for c in recorder.seen)
    recorder.seen.clear()
    claims = ClaimService(db)
    spec = ConsumerSpec(ConsumerKind.LEASE, "p", 2_000_000_000, 2_000_000_100)
    done = claims.claim(ClaimRequest(spec, (ClaimItem(host, "VCPU", 2),)), now_s=1_999_999_000)
    (changes,) = recorder.seen
    assert changes is not None
    assert changes.complete
    assert changes.bumps == 1
    assert [len(h.rows) for h in changes.added] == [1]
    recorder.seen.clear()
    claims.release(done.consumer_uuid, now_s=1_999_999_000)
    (changes,) = recorder.seen
    assert changes is not None
    assert changes.complete
    assert [len(h.rows) for h in changes.removed] == [1]
    assert [len(h.rows) for h in changes.added] == [0]
    db.dispose()


def test_nested_and_read_only_units_of_work_record_nothing(tmp_path: Path) -> None:
    db, recorder, _ = _world(tmp_path)
    recorder.seen.clear()
    with UnitOfWork(db, readonly=True) as uow:
        assert uow.changes is None
    with db.engine.connect() as conn, conn.begin(), UnitOfWork(db, connection=conn) as inner:
        assert inner.changes is None
        inner.calendar.bump()
        inner.commit()
    assert recorder.seen == []  # the bump is in the database, not in any report: caches rebuild
    db.dispose()


def test_a_commit_a_rebuild_may_have_read_is_not_replayed(tmp_path: Path) -> None:
    """Regression: a commit that starts before a rebuild's reads and reports after them was applied a
    second time on top of the rebuilt index."""
    db, _, _ = _world(tmp_path)
    cache = CalendarCache(db)
    cache.current(0)
    ticket = cache.committing()  # a commit in flight...
    cache.invalidate()
    cache.current(0)  # ...the rebuild reads whatever it wrote...
    late = CalendarChanges(bumps=1, described_bumps=1)
    cache.committed(ticket, late)  # ...and its report arrives after the reads: dropped
    assert cache._reported == {}
    after = cache.committing()
    cache.committed(after, late)
    assert cache._reported == {after: late}
    db.dispose()


def test_reports_nobody_asks_for_are_dropped_and_the_cache_rebuilds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that only books never asks its cache: the reports stay bounded, and dropping them is
    sound - the generation no longer matches, so the next answer reads afresh."""
    from slotbroker.domain.claims import ClaimItem, ClaimRequest, ConsumerSpec
    from slotbroker.services.find_slot import calendar_cache

    monkeypatch.setattr(calendar_cache, "MAX_REPORTS", 2)
    db, _, host = _world(tmp_path)
    cache = CalendarCache(db)
    listen(db, cache)
    cache.current(1_999_999_000)
    claims = ClaimService(db)
    for i in range(3):
        spec = ConsumerSpec(ConsumerKind.LEASE, "p", 2_000_000_000 + 100 * i, 2_000_000_100 + 100 * i)
        claims.claim(ClaimRequest(spec, (ClaimItem(host, "VCPU", 1),)), now_s=1_999_999_000)
    assert len(cache._reported) == 1  # two dropped at the third
    rebuilds = cache.rebuilds
    cache.current(1_999_999_000)
    assert cache.rebuilds == rebuilds + 1
    db.dispose()
