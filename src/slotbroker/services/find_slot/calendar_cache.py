"""A per-process calendar index, kept current when the database's calendar generation moves.

Each API replica keeps its own index. Before answering, it reads the generation (one indexed row). When
the generation moved by exactly the bumps of this process's own complete commits since the index was
read, it replays their described changes onto the index (``store/calendar_changes.py``); otherwise -
another process wrote, a commit was not fully described, or a hold the index counted has expired - it
rebuilds from the database. The database stays the only authority on capacity: a stale index can only
cost a retry at claim time, never an overbooking. Decision 0030 gives the argument that replaying is
exact.

Commits report in any order, by ticket (``committing`` runs before the COMMIT). A rebuild reads the
database and then notes the next ticket (its *horizon*): a commit with a smaller ticket may or may not be
in what it read, so its report is dropped (if it was not read, the generation will not match and the
next answer rebuilds); a commit at or past the horizon started after every read, so it is not in it.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from slotbroker.domain.claims import ConsumerKind
from slotbroker.engine import CalendarIndex
from slotbroker.engine.snapshot import AllocationSnap
from slotbroker.services.find_slot.calendar_snapshot import load_snapshot
from slotbroker.services.find_slot.row_changes import cut_to_tails, net_rows
from slotbroker.services.find_slot.shared_reads import SharedRead
from slotbroker.store.calendar_changes import CalendarChanges, Holding
from slotbroker.store.db import Database
from slotbroker.store.repositories.snapshot import committed_generation
from slotbroker.store.repositories.usage import holds_capacity
from slotbroker.store.unit_of_work import UnitOfWork

# A replayed index keeps the rows that have ended since it was read (a rebuild reads only rows ending
# after now): once replays have changed more rows than the index was built from (and this many), the
# next refresh rebuilds. That bounds the growth to about twice, at an amortised O(1) rebuild per row.
REPLAY_ROWS = 10_000
MAX_REPORTS = 1000  # reports kept for the next answer at most (dropping them only costs a rebuild)
LOG_REPLAYS = 64  # replays ``without``'s spare index can catch up with (beyond, it copies the index)
# ``without`` catches its spare up when that rewrites at most this many rows beyond the consumer's own,
# plus one per this many bytes of index (a 100-host index copies for about what a few rows' rewrites cost)
REUSE_ROWS = 8
REUSE_BYTES_PER_ROW = 65536
# a spare is kept only for an index this small: it is a second copy for the life of the process, and a
# large index (100s of MB at 10k+ hosts) must not double a server's memory for a cheaper compaction
SPARE_MAX_BYTES = 32 * 2**20


@dataclass(frozen=True)
class Catalog:
    """What find-slot validates names against, read with the index so it needs no query per request."""

    custom_classes: frozenset[str]
    stocked_classes: frozenset[str]  # classes some host has an inventory of
    custom_traits: frozenset[str]
    sites: frozenset[str]
    hosts: frozenset[str]
    ports: frozenset[tuple[str, str]]  # (site, port)
    host_site: Mapping[str, str]


@dataclass(frozen=True)
class CachedIndex:
    index: CalendarIndex
    catalog: Catalog
    generation: int
    built_at_s: int
    stale_after_s: int | None  # the first hold expiry after the build: usage drops then
    rows: int = 0  # allocation rows read at the build
    replayed: int = 0  # rows added or removed by replays since
    seq: int = 0  # the cache's count of entries made: a replay's entry follows its parent's by one

    def fresh_at(self, generation: int, now_s: int) -> bool:
        return self.generation == generation and self.unexpired_at(now_s)

    def unexpired_at(self, now_s: int) -> bool:
        return self.stale_after_s is None or now_s < self.stale_after_s

    def replayable_at(self, now_s: int) -> bool:
        return self.unexpired_at(now_s) and self.replayed <= max(self.rows, REPLAY_ROWS)

    def without(self, holding: Holding) -> CalendarIndex:
        """A copy of the index as if ``holding`` (one consumer, as the store describes it) were gone:
        the rows of it this index counts (``_counted``, the replay's rule) taken out by the engine's
        own removal, which leaves what a build without them would (decision 0039)."""
        index = writable_copy(self.index)
        apply_changes(index, [], list(_counted([holding], self.built_at_s)))
        return index


class CalendarCache:
    """``current()`` answers the index; ``committing``/``committed`` are the unit of work's commit
    listener (``store.unit_of_work.listen``, registered by the composition root)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.Lock()  # one refresh at a time; others reuse it
        self._cached: CachedIndex | None = None
        self._tickets = itertools.count()
        self._horizon = 0  # reports of tickets below it are in the cached index, or never will be
        self._reported: dict[int, CalendarChanges] = {}  # complete or not, at or past the horizon
        self._reports = threading.Lock()
        self.rebuilds = 0
        self.replays = 0  # refreshes done by replaying this process's own commits
        self.replay_failures = 0  # replays the index refused (then rebuilt); the tests hold it at 0
        self.in_place = 0  # replays applied to the cached index itself (nobody else held it)
        self._reads = SharedRead(lambda: committed_generation(self.db.engine))
        self._seqs = itertools.count(1)
        # ``without``'s spare index and the replays since the last rebuild it catches up with
        self._spare_lock = threading.Lock()
        self._spare: _Spare | None = None
        self._log: list[_Replayed] = []
        self.spares_reused = 0

    # -- the commit listener ------------------------------------------------------------------------------
    def committing(self) -> int:
        with self._reports:
            return next(self._tickets)

    def committed(self, ticket: int, changes: CalendarChanges | None) -> None:
        if changes is None:
            return  # not committed (or not known to be): the generation decides
        with self._reports:
            if len(self._reported) >= MAX_REPORTS:  # nobody asks (a process that only books): forget
                self._reported.clear()  # them; the generation will not match, the next answer rebuilds
            if ticket >= self._horizon:
                self._reported[ticket] = changes

    # -- the index ----------------------------------------------------------------------------------------
    def generation(self, arrived: float | None = None) -> int:
        """The committed calendar generation: one primary-key read, no ORM session; with ``arrived``, a
        read begun since then may serve instead (``shared_reads.py``)."""
        return self._reads.since(arrived)

    def current(self, now_s: int | None = None, *, arrived: float | None = None) -> CachedIndex:
        """The index as of a generation read begun after ``arrived`` (``time.monotonic()``; None: now)."""
        now = int(time.time()) if now_s is None else now_s
        cached = self._cached
        if cached is not None and not self._reported and cached.fresh_at(self.generation(arrived), now):
            return cached
        with self._lock:
            cached = self._cached
            if cached is not None and cached.replayable_at(now):
                with self._reports:
                    reports = dict(self._reported)  # taken before the generation is read: all in it
                generation = self.generation()
                if cached.generation == generation and not reports:
                    return cached
                replayed = self._replay(cached, reports, generation)
                if replayed is not None and replayed.unexpired_at(now):  # a hold it added may be over
                    return replayed
            return self._rebuild(now)

    def _replay(
        self, cached: CachedIndex, reports: dict[int, CalendarChanges], generation: int
    ) -> CachedIndex | None:
        """``cached`` with ``reports`` replayed, when they are exactly what moved the generation; else
        None (rebuild). All of them or none: add and remove commute, a part of a set would be wrong."""
        changes = reports.values()
        if not all(c.complete for c in changes):
            return None
        if generation != cached.generation + sum(c.bumps for c in changes):
            return None
        since = cached.built_at_s
        removed = [r for c in changes for r in _counted(c.removed, since)]
        added = [r for c in changes for r in _counted(c.added, since)]
        # rows a change left as they were (a status change, the past of a lease that ended) cancel out
        plus, minus = cut_to_tails(*net_rows(added, removed))
        index = cached.index
        if plus or minus:
            if generation != cached.generation and _unshared(cached):
                self.in_place += 1
            else:
                index = writable_copy(index)
        try:
            apply_changes(index, plus, minus)
        except (KeyError, ValueError):  # a row the index does not hold: never expected; read afresh
            self.replay_failures += 1
            if index is cached.index:
                # changed in place, perhaps in part: no later answer or replay may start from it, even
                # when the rebuild that follows fails
                self._cached = None
            return None
        index.generation = generation
        expiries = [
            h.expires_s
            for c in changes
            for h in c.added
            if h.kind == ConsumerKind.HOLD.value and h.expires_s is not None and h.expires_s > since
        ]
        if cached.stale_after_s is not None:
            expiries.append(cached.stale_after_s)
        stale = min(expiries, default=None)
        fresh = dataclasses.replace(
            cached,
            index=index,
            generation=generation,
            stale_after_s=stale,
            replayed=cached.replayed + len(plus) + len(minus),
            seq=next(self._seqs),
        )
        with self._spare_lock:
            self._log.append(_Replayed(cached.seq, fresh.seq, plus, minus))
            del self._log[:-LOG_REPLAYS]
        with self._reports:
            for ticket in reports:
                self._reported.pop(ticket, None)
        self._cached = fresh
        self.replays += 1
        return fresh

    def _rebuild(self, now: int) -> CachedIndex:
        with UnitOfWork(self.db, readonly=True) as uow:
            generation = uow.calendar.generation()
            snapshot = load_snapshot(uow, now_s=now)
            next_expiry = uow.snapshot.next_hold_expiry(now)
            catalog = Catalog(
                custom_classes=uow.catalog.custom_class_names(),
                stocked_classes=frozenset(rc for host in snapshot.hosts for rc in host.inventories),
                custom_traits=uow.catalog.custom_trait_names(),
                sites=frozenset(site.name for site in snapshot.sites),
                hosts=frozenset(host.name for host in snapshot.hosts),
                ports=frozenset((port.site, port.name) for port in snapshot.ports),
                host_site={host.name: host.site for host in snapshot.hosts},
            )
        with self._reports:  # every read is done: commits from the next ticket on are not in them
            self._horizon = next(self._tickets)
            self._reported = {t: c for t, c in self._reported.items() if t >= self._horizon}
        fresh = CachedIndex(
            CalendarIndex(snapshot, generation=generation),
            catalog,
            generation,
            now,
            next_expiry,
            rows=len(snapshot.allocations),
            seq=next(self._seqs),
        )
        with self._spare_lock:  # a spare and the replays it would catch up with are of the old index
            self._spare, self._log = None, []
        self._cached = fresh
        self.rebuilds += 1
        return fresh

    def invalidate(self) -> None:
        with self._lock:
            self._cached = None
            with self._spare_lock:
                self._spare, self._log = None, []

    # -- the index as if a consumer were gone ----------------------------------------------------------
    @contextmanager
    def without(self, cached: CachedIndex, holding: Holding) -> Iterator[CalendarIndex]:
        """``cached.without(holding)`` lent for the ``with`` block, usually without copying the index.

        The cache keeps one spare index: the one the last block used, an earlier entry of this index
        without the consumer it was lent for. A block takes the spare (no other block can hold it) and
        brings it to ``cached`` by the engine's own batch updates: that consumer's rows added back, the
        replays logged since applied as the cached index got them, ``holding``'s rows taken out (rows
        added and removed alike cancel: step functions add, so the sums are equal). When the lease is
        the same as last time and nothing else changed, that is nothing at all. Without a spare of
        this index's lineage (none yet, another block holds it, a rebuild since, or more replays than
        are logged), or when catching up would rewrite more rows than a copy costs (``REUSE_ROWS``),
        it is ``cached.without`` (a copy): the same index either way, only the cost differs. On
        leaving, the index becomes the spare: the caller must not keep it."""
        with self._spare_lock:
            spare, self._spare = self._spare, None
            log = self._chain(spare, cached)
        gone = list(_counted([holding], cached.built_at_s))
        index: CalendarIndex | None = None
        if spare is not None and log is not None:
            added = [*spare.gone, *(r for step in log for r in step.plus)]
            removed = [*(r for step in log for r in step.minus), *gone]
            plus, minus = net_rows(added, removed)  # the multisets' differences, counted by field tuples
            # rows a copy would not rewrite (it takes out ``gone``'s too): each costs about as much as
            # copying a small index, so beyond a few (more in a larger index) the copy is cheaper
            extra = {r.provider_id for r in (*plus, *minus)} - {r.provider_id for r in gone}
            if len(extra) <= REUSE_ROWS + spare.index.nbytes() // REUSE_BYTES_PER_ROW:
                try:
                    apply_changes(spare.index, plus, minus)
                    index = spare.index
                    self.spares_reused += 1
                except (KeyError, ValueError):  # never expected (the cache's own batches): copy
                    index = None
        if index is None:
            index = cached.without(holding)
        yield index
        if index.nbytes() <= SPARE_MAX_BYTES:
            with self._spare_lock:
                self._spare = _Spare(index, cached.seq, tuple(gone))

    def _chain(self, spare: _Spare | None, cached: CachedIndex) -> list[_Replayed] | None:
        """The logged replays from the spare's entry to ``cached``, in order; None when they are not all
        logged (then the spare cannot catch up)."""
        if spare is None:
            return None
        steps = [r for r in self._log if spare.seq <= r.parent and r.child <= cached.seq]
        at = spare.seq
        for step in steps:
            if step.parent != at:
                return None
            at = step.child
        return steps if at == cached.seq else None


@dataclass(frozen=True)
class _Replayed:
    """One replay: the entry ``parent`` became ``child`` by adding ``plus`` and removing ``minus``."""

    parent: int
    child: int
    plus: list[AllocationSnap]
    minus: list[AllocationSnap]


@dataclass(frozen=True)
class _Spare:
    """``without``'s spare: the index of entry ``seq`` without the rows ``gone``."""

    index: CalendarIndex
    seq: int
    gone: tuple[AllocationSnap, ...]


def _counted(holdings: Iterable[Holding], since_s: int) -> Iterable[AllocationSnap]:
    """The rows of ``holdings`` an index read at ``since_s`` counts (``load_snapshot``'s rule: rows
    ending after it, of consumers holding capacity then)."""
    for h in holdings:
        if holds_capacity(h.status, h.kind, h.expires_s, since_s):
            yield from (r for r in h.rows if r.end_s > since_s)


# The cache's own references while ``_unshared`` asks: to the entry, ``self._cached``, ``current``'s local,
# ``_replay``'s and ``_unshared``'s parameters and ``sys.getrefcount``'s argument; to its index, the
# entry's field, ``_replay``'s local and the argument. A test holds a lone replay at these counts.
_OWN_ENTRY_REFS = 5
_OWN_INDEX_REFS = 3


def _unshared(cached: CachedIndex) -> bool:
    """True when nobody but the cache holds ``cached`` or its index, so changing the index in place
    cannot change what a search sees. Called under the cache's lock with this process's reports still
    pending: a thread that reads ``_cached`` from now on finds reports (or a generation the entry does
    not have) and waits for the lock, so no reader can start on the entry while it changes; a reader
    that already holds it (a search in another thread, any frame keeping the entry or its index)
    counts in CPython's exact reference counts, and the index is copied as before. Without the GIL
    (free-threaded builds) the counts are not exact: always copy."""
    if not getattr(sys, "_is_gil_enabled", lambda: True)():
        return False
    return sys.getrefcount(cached) <= _OWN_ENTRY_REFS and sys.getrefcount(cached.index) <= _OWN_INDEX_REFS


def writable_copy(index: CalendarIndex) -> CalendarIndex:
    """A copy to change: searches in other threads may still be reading ``index`` (an answer is
    computed from one ``CachedIndex``, never from one being changed under it). The topology never
    changes without a rebuild, so it is shared."""
    return copy.deepcopy(index, {id(index.topo): index.topo})


def apply_changes(index: CalendarIndex, added: list[AllocationSnap], removed: list[AllocationSnap]) -> None:
    """The one place the cache changes an index in place. One batch, adds first: a VLAN tag's row must
    be there to be removed, whatever order the commits came in; a row both touch (EASY's head cancelled
    and booked again on the same hosts) is rebuilt once."""
    if added or removed:
        index.update_many(added, removed)
        # searches follow a replay, each paying per changed row in every stage: merge them once
        index.compact()
