"""``CalendarCache.without`` lends the cached index as if one consumer were gone, from a spare index it
brings up to date by the logged replays instead of a copy: after any random sequence of real writes
(``World``, the cache's own property test) the index lent equals, table by table, an index *built*
from the database's rows minus the consumer's, whichever lease is asked for (the same as last time, as
EASY's head asks, or another, as compaction asks); the cached index is left as it was, and the spare is
in fact reused."""

from __future__ import annotations

import contextlib
import dataclasses
from collections import Counter

import pytest
from sqlalchemy import select
from test_calendar_cache_replay import World, assert_same, fresh_index

from slotbroker.domain.claims import ConsumerKind
from slotbroker.domain.errors import SlotbrokerError
from slotbroker.engine import CalendarIndex
from slotbroker.engine.snapshot import NO_VLAN, AllocationSnap, AllocationTable
from slotbroker.services.find_slot import calendar_cache
from slotbroker.services.find_slot.calendar_snapshot import load_snapshot
from slotbroker.store.calendar_changes import Holding
from slotbroker.store.db import Database
from slotbroker.store.tables import allocations
from slotbroker.store.unit_of_work import UnitOfWork

LIVE = ("PENDING", "ACTIVE")


def read_holding(db: Database, lease_id: str) -> Holding | None:
    """The lease as the store describes it, each row with its own times; None unless it is live."""
    with UnitOfWork(db, readonly=True) as uow:
        row = uow.leases.find(lease_id)
        if row is None or row.status not in LIVE:
            return None
        rows = uow.session.execute(
            select(
                allocations.c.provider_id,
                allocations.c.resource_class,
                allocations.c.amount,
                allocations.c.start_s,
                allocations.c.end_s,
                allocations.c.vlan_tag,
            ).where(allocations.c.consumer_id == row.id)
        ).all()
    snaps = tuple(AllocationSnap(int(p), str(c), int(a), int(s), int(e), v) for p, c, a, s, e, v in rows)
    return Holding(int(row.id), str(row.status), ConsumerKind.LEASE.value, None, snaps)


def built_without(db: Database, now: int, since: int, gone: tuple[AllocationSnap, ...]) -> CalendarIndex:
    """An index built from the rows the cache would read, less ``gone``'s rows it would count."""
    with UnitOfWork(db, readonly=True) as uow:
        snapshot = load_snapshot(uow, now_s=now, since_s=since)
    al = snapshot.allocations
    rows = Counter(
        AllocationSnap(
            int(p), al.classes[int(c)], int(a), int(s), int(e), None if int(v) == NO_VLAN else int(v)
        )
        for p, c, a, s, e, v in zip(
            al.provider, al.class_idx, al.amount, al.start, al.end, al.vlan, strict=True
        )
    )
    left = rows - Counter(r for r in gone if r.end_s > since)
    table = AllocationTable.from_rows(left.elements())
    return CalendarIndex(dataclasses.replace(snapshot, allocations=table))


@pytest.mark.parametrize("seed", range(3))
def test_the_index_lent_without_a_lease_equals_one_built_without_it(db: Database, seed: int) -> None:
    w = World(db, seed)
    cache = w.svc.calendar
    cache.current(w.now)
    asked: str | None = None
    lent = 0
    for _ in range(70):
        op = w.rng.choice(World.OPS)
        with contextlib.suppress(SlotbrokerError):  # refused: wrote nothing
            getattr(w, op)()
        cached = cache.current(w.now)
        live = [lid for lid in w.leases if read_holding(db, lid) is not None]
        if not live:
            continue
        if asked not in live or w.rng.random() < 0.4:
            asked = w.rng.choice(live)
        holding = read_holding(db, asked)
        assert holding is not None
        with cache.without(cached, holding) as index:
            assert_same(index, built_without(db, w.now, cached.built_at_s, holding.rows))
            assert index is not cached.index
        lent += 1
        assert_same(cached.index, fresh_index(db, w.now, cached.built_at_s))  # left as it was
    assert lent > 20
    assert cache.spares_reused > lent // 3  # most blocks caught the spare up rather than copying


def test_two_blocks_at_once_never_share_an_index(db: Database) -> None:
    w = World(db, 0)
    for _ in range(6):
        with contextlib.suppress(SlotbrokerError):  # full
            w.create()
    cached = w.svc.calendar.current(w.now)
    holding = read_holding(db, w.leases[0])
    assert holding is not None
    with w.svc.calendar.without(cached, holding) as first, w.svc.calendar.without(cached, holding) as second:
        assert first is not second
        want = built_without(db, w.now, cached.built_at_s, holding.rows)
        assert_same(first, want)
        assert_same(second, want)


def test_no_spare_is_kept_for_a_large_index(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A spare is a second index for the life of the process: past ``SPARE_MAX_BYTES`` every block
    copies, and nothing stays behind."""
    monkeypatch.setattr(calendar_cache, "SPARE_MAX_BYTES", 0)
    w = World(db, 0)
    for _ in range(4):
        with contextlib.suppress(SlotbrokerError):  # full
            w.create()
    cache = w.svc.calendar
    cached = cache.current(w.now)
    holding = read_holding(db, w.leases[0])
    assert holding is not None
    for _ in range(3):
        with cache.without(cached, holding) as index:
            assert_same(index, built_without(db, w.now, cached.built_at_s, holding.rows))
        assert cache._spare is None
    assert cache.spares_reused == 0
