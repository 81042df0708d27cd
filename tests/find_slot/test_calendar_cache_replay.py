"""The calendar cache replays this process's own commits (decision 0030) and stays exact.

A random sequence of real writes through ``build_services`` (leases created, extended, shortened, moved,
cancelled, ended early, put in ERROR; holds claimed, released and left to expire; rehosts; inventory
changes), and after every step the cached index must answer exactly as an index read afresh from the
database: every row of every table, the same step function. The described writes must not rebuild; a
write by another replica (another ``build_services`` on the same database) must.
"""

from __future__ import annotations

import contextlib
import itertools
import random
from datetime import UTC, datetime

import pytest

from slotbroker.bootstrap import Services, build_services
from slotbroker.config import Settings
from slotbroker.domain.claims import ClaimItem, ClaimRequest, ConsumerKind, ConsumerSpec, ConsumerStatus
from slotbroker.domain.errors import SlotbrokerError
from slotbroker.domain.inventory import Inventory
from slotbroker.domain.providers import ProviderKind
from slotbroker.engine import CalendarIndex
from slotbroker.engine.steps import StepTable
from slotbroker.services.booking.lease_end import end_now
from slotbroker.services.booking.lease_rehost import LeaseRehoster
from slotbroker.services.find_slot import calendar_cache
from slotbroker.services.find_slot.calendar_snapshot import load_snapshot
from slotbroker.store.db import Database
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire import providers as cmd
from slotbroker.wire.leases import CreateLease, LeaseItemSpec, UpdateLease
from slotbroker.wire.offers import OfferSetRequest

T0 = 1_900_000_000
_names = itertools.count()


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def canonical(table: StepTable, row: int) -> tuple[list[int], list[int]]:
    """A row's step function without redundant events (equal functions, equal answers)."""
    times, levels = table.series(row)
    out_t: list[int] = []
    out_l: list[int] = []
    prev = 0
    for t, level in zip(times.tolist(), levels.tolist(), strict=True):
        if level != prev:
            out_t.append(t)
            out_l.append(level)
            prev = level
    return out_t, out_l


def tables_of(index: CalendarIndex) -> dict[str, StepTable]:
    named = {f"host/{c}": t for c, t in index.host.items()}
    named |= {f"site/{c}": t for c, t in index.site.items()}
    named |= {
        "link": index.link,
        "port_bw": index.port_bw,
        "port_vlans": index.port_vlans,
        "port_untagged": index.port_untagged,
    }
    return named


def assert_same(cached: CalendarIndex, fresh: CalendarIndex) -> None:
    ours, theirs = tables_of(cached), tables_of(fresh)
    for name in sorted(set(ours) | set(theirs)):
        a, b = ours.get(name), theirs.get(name)
        n = max(a.n_rows if a is not None else 0, b.n_rows if b is not None else 0)
        for row in range(n):
            got = canonical(a, row) if a is not None else ([], [])
            want = canonical(b, row) if b is not None else ([], [])
            assert got == want, f"{name} row {row}"
    flagged = {c: s for c, s in cached.unbounded.items() if s}
    assert flagged == {c: s for c, s in fresh.unbounded.items() if s}
    for (s, e, t), (fs, fe, ft) in zip(cached._tags, fresh._tags, strict=True):
        assert sorted(zip(s.tolist(), e.tolist(), t.tolist(), strict=True)) == sorted(
            zip(fs.tolist(), fe.tolist(), ft.tolist(), strict=True)
        )


def fresh_index(db: Database, now: int, since: int) -> CalendarIndex:
    with UnitOfWork(db, readonly=True) as uow:
        return CalendarIndex(load_snapshot(uow, now_s=now, since_s=since))


class World:
    def __init__(self, db: Database, seed: int) -> None:
        self.db = db
        self.rng = random.Random(seed)
        self.now = T0
        settings = Settings(
            database_url=str(db.url), migrate_on_start=False, event_loop_interval_s=0, planner_workers=0
        )
        self.svc: Services = build_services(settings, db)
        self.svc.claims.clock = lambda: self.now
        self.svc.leases.clock = lambda: self.now
        self.site = self.svc.inventory.create_provider(
            cmd.CreateProvider(name=f"CSITE{next(_names)}", kind=ProviderKind.SITE)
        ).uuid
        self.hosts = [self.add_host() for _ in range(3)]
        self.leases: list[str] = []
        self.holds: list[str] = []
        self.offer_sets: list[str] = []

    def add_host(self) -> str:
        body = cmd.CreateProvider(
            name=f"chost{next(_names)}",
            kind=ProviderKind.HOST,
            parent_uuid=self.site,
            inventories={"VCPU": Inventory(total=8), "MEMORY_MB": Inventory(total=64)},
        )
        return str(self.svc.inventory.create_provider(body).uuid)

    def items(self) -> list[LeaseItemSpec]:
        hosts = self.rng.sample(self.hosts, self.rng.randint(1, 2))
        out = [
            LeaseItemSpec(provider_uuid=h, resource_class="VCPU", amount=self.rng.randint(1, 4))
            for h in hosts
        ]
        if self.rng.random() < 0.3:
            out.append(LeaseItemSpec(provider_uuid=hosts[0], resource_class="MEMORY_MB", amount=16))
        return out

    # -- the operations: each returns whether it is described (must not rebuild) ----------------------
    def create(self) -> bool:
        start = self.now + self.rng.choice([0, 0, 50, 300])
        body = CreateLease(
            name=f"l{next(_names)}",
            start=at(start),
            end=at(start + self.rng.randint(60, 900)),
            items=self.items(),
        )
        self.leases.append(str(self.svc.leases.create(body, project="sci", now_s=self.now).id))
        return True

    def _lease(self, *statuses: str) -> tuple[str, int, int, int] | None:
        """A random lease of ours, in one of ``statuses`` when some is (else any: the refusal is tested)."""
        if not self.leases:
            return None
        views = [self.svc.leases.get(lid, project=None) for lid in self.leases]
        fitting = [v for v in views if v.status in statuses] or views
        lease = self.rng.choice(fitting)
        return lease.id, lease.generation, lease.start_s, lease.end_s

    def change_end(self) -> bool:
        found = self._lease("ACTIVE", "PENDING")
        if found is None:
            return True
        lid, gen, start, _end = found
        new_end = max(start, self.now) + self.rng.randint(1, 1200)
        self.svc.leases.update(
            lid, UpdateLease(generation=gen, end=at(new_end)), project=None, now_s=self.now
        )
        return True

    def move(self) -> bool:
        found = self._lease("PENDING")
        if found is None:
            return True
        lid, gen, start, end = found
        shift = self.rng.randint(1, 400)
        body = UpdateLease(generation=gen, start=at(start + shift), end=at(end + shift))
        self.svc.leases.update(lid, body, project=None, now_s=self.now)
        return True

    def cancel(self) -> bool:
        found = self._lease("ACTIVE", "PENDING", "ERROR")
        if found is not None:
            self.svc.leases.cancel(found[0], project=None, now_s=self.now)
        return True

    def end(self) -> bool:
        found = self._lease("ACTIVE")
        if found is not None:
            end_now(self.svc.leases, found[0], now_s=self.now)
        return True

    def error(self) -> bool:
        if self.leases:
            self.svc.leases.mark_error(self.rng.choice(self.leases), "test", now_s=self.now)
        return True

    def hold(self) -> bool:
        spec = ConsumerSpec(
            ConsumerKind.HOLD,
            "sci",
            self.now + 10,
            self.now + 500,
            expires_s=self.now + self.rng.randint(30, 300),
        )
        item = self.rng.choice(self.items())
        request = ClaimRequest(spec, (ClaimItem(str(item.provider_uuid), item.resource_class, item.amount),))
        self.holds.append(self.svc.claims.claim(request, now_s=self.now).consumer_uuid)
        # PostgreSQL's two-round-trip claims commit outside any unit of work: nobody tells the cache
        return not self.svc.claims.two_trips_for(request)

    def release_hold(self) -> bool:
        if self.holds:
            self.svc.claims.release(self.holds.pop(), status=ConsumerStatus.REJECTED, now_s=self.now)
        return True

    def offer(self) -> bool:
        start = self.now + self.rng.choice([0, 60, 600])
        request = {
            "components": [{"name": "c", "resources": {"VCPU": self.rng.randint(1, 4)}}],
            "earliest_start": at(start).isoformat(),
            "latest_end": at(start + 86400).isoformat(),
            "duration": "PT10M",
        }
        body = OfferSetRequest(request=request, max_offers=self.rng.randint(1, 3))
        self.offer_sets.append(self.svc.offers.create(body, project="sci", now_s=self.now).id)
        return True

    def _offered(self) -> tuple[str, int] | None:
        """An OFFERED offer of ours and how many other OFFERED offers its set has."""
        if not self.offer_sets:
            return None
        view = self.svc.offers.offer_set(self.rng.choice(self.offer_sets), project=None, now_s=self.now)
        live = [o.id for o in view.offers if o.state == "OFFERED"]
        return (self.rng.choice(live), len(live) - 1) if live else None

    def accept(self) -> bool:
        found = self._offered()
        if found is None:
            return True
        offer_id, siblings = found
        self.leases.append(self.svc.offers.accept(offer_id, project=None, now_s=self.now).uuid)
        # a hold becoming a lease changes nothing the calendar counts, but an accept that frees no sibling
        # bumps the calendar for it with nothing described: that one rebuilds
        return siblings > 0

    def reject(self) -> bool:
        found = self._offered()
        if found is not None:
            self.svc.offers.reject(found[0], project=None, now_s=self.now)
        return True

    def rehost(self) -> bool:
        found = self._lease("ACTIVE", "PENDING")
        if found is None:
            return True
        lease = found[0]
        with UnitOfWork(self.db) as uow:
            LeaseRehoster(self.svc.claims).rehost_in(uow, lease, frozenset(), self.now)
            uow.commit()
        return True

    def tick(self) -> bool:
        self.now += self.rng.randint(1, 200)
        self.svc.claims.expire_holds(now_s=self.now)  # no expired hold left for a claim to reap
        self.svc.lease_events.tick(now_s=self.now)
        return False

    def inventory(self) -> bool:
        self.hosts.append(self.add_host())
        return False

    OPS = (
        "create", "create", "create", "change_end", "move", "cancel", "end", "error",
        "hold", "hold", "release_hold", "offer", "offer", "accept", "reject", "rehost", "tick", "tick",
        "inventory",
    )  # fmt: skip


@pytest.mark.parametrize("seed", range(3))
def test_replayed_index_equals_a_fresh_read(db: Database, seed: int) -> None:
    w = World(db, seed)
    cache = w.svc.calendar
    cache.current(w.now)
    replayed = 0
    for _ in range(80):
        op = w.rng.choice(World.OPS)
        before = cache.rebuilds
        try:
            described = getattr(w, op)()
        except SlotbrokerError:
            described = True  # refused: wrote nothing
        cached = cache.current(w.now)
        if described:
            assert cache.rebuilds == before, f"{op} rebuilt the index"
            replayed += 1
        assert cached.generation == cache.generation()
        assert_same(cached.index, fresh_index(db, w.now, cached.built_at_s))
    assert cache.replays > 0
    assert cache.replay_failures == 0
    assert replayed > 20


def test_another_replicas_write_rebuilds(database_url: str) -> None:
    a_db, b_db = Database(database_url), Database(database_url)
    from slotbroker.store import migrate

    migrate.upgrade(a_db.engine)
    try:
        a = World(a_db, 7)
        b = World.__new__(World)
        b.db, b.rng, b.now = b_db, random.Random(8), a.now
        settings = Settings(
            database_url=database_url, migrate_on_start=False, event_loop_interval_s=0, planner_workers=0
        )
        b.svc = build_services(settings, b_db)
        b.svc.claims.clock = lambda: b.now
        b.site, b.hosts, b.leases, b.holds, b.offer_sets = a.site, a.hosts, [], [], []
        a.svc.calendar.current(a.now)
        b.svc.calendar.current(b.now)
        a.create()
        rebuilt = b.svc.calendar.rebuilds
        seen = b.svc.calendar.current(b.now)
        assert b.svc.calendar.rebuilds == rebuilt + 1  # not told: the generation moved, B reads again
        assert_same(seen.index, fresh_index(b_db, b.now, seen.built_at_s))
        a_before = a.svc.calendar.rebuilds
        a.svc.calendar.current(a.now)
        assert a.svc.calendar.rebuilds == a_before  # A replays its own write
        b.create()  # B's write, then A's: A was told only of its own, so it reads again
        a.create()
        a_before = a.svc.calendar.rebuilds
        seen = a.svc.calendar.current(a.now)
        assert a.svc.calendar.rebuilds == a_before + 1
        assert_same(seen.index, fresh_index(a_db, a.now, seen.built_at_s))
    finally:
        a_db.dispose()
        b_db.dispose()


def test_a_replay_leaves_the_index_readers_hold_alone(db: Database) -> None:
    """A search in another thread may still be reading the index it was handed: a replay changes a
    copy, never that one."""
    w = World(db, 3)
    held = w.svc.calendar.current(w.now)
    before = fresh_index(db, w.now, held.built_at_s)
    w.create()
    now = w.svc.calendar.current(w.now)
    assert w.svc.calendar.replays == 1
    assert now.index is not held.index
    assert_same(held.index, before)
    assert_same(now.index, fresh_index(db, w.now, now.built_at_s))


def test_a_replay_leaves_an_index_held_without_its_entry_alone(db: Database) -> None:
    """A reader may keep only the index (``current(now).index``, as the site summaries and the calendar
    view do): its reference alone keeps the replay off it (the check counts the index's references as
    well as the entry's)."""
    w = World(db, 4)
    held = w.svc.calendar.current(w.now).index
    built_at = w.svc.calendar.current(w.now).built_at_s
    before = fresh_index(db, w.now, built_at)
    while not w.create():
        pass
    now = w.svc.calendar.current(w.now)
    assert w.svc.calendar.replays == 1
    assert w.svc.calendar.in_place == 0
    assert now.index is not held
    assert_same(held, before)


def test_replays_stop_once_they_changed_more_rows_than_were_read(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ended rows stay in a replayed index; after as many replayed rows as the build read, it rebuilds."""
    monkeypatch.setattr(calendar_cache, "REPLAY_ROWS", 0)
    w = World(db, 4)
    cache = w.svc.calendar
    assert cache.current(w.now).rows == 0
    w.create()
    assert cache.current(w.now).replayed > 0  # replayed: nothing had been read, nothing replayed yet
    rebuilds = cache.rebuilds
    w.create()
    cached = cache.current(w.now)
    assert cache.rebuilds == rebuilds + 1
    assert cached.replayed == 0
    assert cached.rows > 0
    assert_same(cached.index, fresh_index(db, w.now, cached.built_at_s))


@pytest.mark.parametrize("seed", range(2))
def test_a_replay_nobody_else_holds_changes_the_index_in_place_and_stays_exact(
    db: Database, seed: int
) -> None:
    """When no reader holds the cached index (the test drops every reference before the next write), a
    replay changes it in place instead of copying it, and it still equals a fresh read after each step."""
    w = World(db, 10 + seed)
    cache = w.svc.calendar
    cache.current(w.now)
    for _ in range(60):
        op = w.rng.choice(World.OPS)
        with contextlib.suppress(SlotbrokerError):
            getattr(w, op)()
        generation, built_at = cache.current(w.now).generation, cache.current(w.now).built_at_s
        assert generation == cache.generation()
        assert_same(cache.current(w.now).index, fresh_index(db, w.now, built_at))
    assert cache.in_place > 10
    assert cache.replay_failures == 0


def test_an_in_place_replay_that_fails_part_way_is_never_served_or_replayed_again(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replay that changed the cached index in place and then failed (its adds applied, its removals
    refused) leaves nothing cached, even when the rebuild that should follow fails too: the next answer
    is read afresh, not the half-changed index with the same reports replayed over it once more."""
    w = World(db, 3)
    cache = w.svc.calendar
    cache.current(w.now)
    real_apply = calendar_cache.apply_changes

    def adds_then_fails(index: CalendarIndex, added: list, removed: list) -> None:  # type: ignore[type-arg]
        real_apply(index, added, [])
        raise ValueError("refused part way")

    def rebuild_fails(now: int) -> calendar_cache.CachedIndex:
        raise RuntimeError("database away")

    while not w.create():  # a write whose report the next answer replays
        pass
    monkeypatch.setattr(calendar_cache, "apply_changes", adds_then_fails)
    monkeypatch.setattr(cache, "_rebuild", rebuild_fails)
    with pytest.raises(RuntimeError):
        cache.current(w.now)
    assert cache.in_place == 1
    assert cache.replay_failures == 1
    monkeypatch.undo()
    current = cache.current(w.now)
    assert current.generation == cache.generation()
    assert_same(current.index, fresh_index(db, w.now, current.built_at_s))
