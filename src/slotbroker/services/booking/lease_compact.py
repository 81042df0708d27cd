"""Compaction: move a PENDING lease to its earliest possible start, never later than it is.

Where it could go is a find-slot question about the lease's own shape, asked of the calendar *as if the
lease were gone* (its own rows must not block it): ``CalendarCache.without`` lends the cached index
with the lease's rows taken out by the engine's own removal (a spare index brought up to date, or a
copy), and ``find_slots`` searches it with the request the lease stands for. The move is
``LeaseService.move_in``: the update's machinery (quotas, the claim's capacity proof, the host-swap rule,
the generation compare-and-swap, events) in one transaction.
Decision 0039 argues why the answer is exact and why a batch moves each lease in its own transaction.
A batch reads its leases at once and keeps those reads while only its own moves commit
(``lease_compact_reads.py``, decision 0052).

The request a lease stands for is ``lease_shape.py``'s. A lease holding a link, a facility port or a
VLAN tag cannot be asked for that way and is not compacted (``not_compactable``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slotbroker.domain.claims import ConsumerStatus
from slotbroker.domain.errors import (
    CapacityConflict,
    ConcurrentUpdate,
    FieldError,
    Forbidden,
    NotFound,
    ValidationFailed,
)
from slotbroker.domain.time import now_s as wall_now
from slotbroker.domain.time import to_datetime
from slotbroker.engine.calendar import CalendarIndex
from slotbroker.engine.results import Window
from slotbroker.services.booking.alternates import repoint_placement
from slotbroker.services.booking.lease_compact_reads import PassReads
from slotbroker.services.booking.lease_shape import (
    LeaseRead,
    by_component,
    held,
    holding,
    host_maps,
    merged,
    pair,
    search,
    shape,
)
from slotbroker.services.booking.leases import LeaseService
from slotbroker.services.find_slot.calendar_cache import CachedIndex
from slotbroker.services.find_slot.service import FindSlotService
from slotbroker.services.retry import MAX_ATTEMPTS, retrying
from slotbroker.store.calendar_changes import CalendarChanges
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire.leases import (
    CompactionOutcome,
    CompactionReport,
    CompactLease,
    CompactLeases,
    LeaseCompaction,
    UpdateLease,
)

PENDING = ConsumerStatus.PENDING.value
# why a lease stayed where it was (``CompactionOutcome.reason``)
NO_EARLIER = "no_earlier_window"
STARTED = "due_now"  # it starts now or has started: nothing earlier exists
NOT_PENDING = "not_pending"
NOT_COMPACTABLE = "not_compactable"
GONE = "not_found"


class _Stay(Exception):
    def __init__(self, reason: str, lease: LeaseRead | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.lease = lease


class LeaseCompactor:
    """``compact`` (one lease) and ``compact_many`` (a batch, each move its own transaction)."""

    def __init__(
        self,
        leases: LeaseService,
        find_slot: FindSlotService,
        *,
        clock: Callable[[], int] = wall_now,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.leases = leases
        self.find_slot = find_slot
        self.db = leases.db
        self.clock = clock
        self.max_attempts = max_attempts
        self.searches = 0  # full searches on an index without the lease (the cheap pre-check passed)
        self.batch_reads = True  # a batch reads its leases at once (False: one by one, the plain path)

    # -- one lease ------------------------------------------------------------------------------------------
    def compact(
        self, lease_id: str, body: CompactLease, *, project: str | None, now_s: int | None = None
    ) -> LeaseCompaction:
        """Move the PENDING lease ``lease_id`` to its earliest start (see the module); unchanged when
        nothing earlier exists. Raises ``NotFound``, ``ConcurrentUpdate`` (stale ``generation``: code
        ``concurrent_update``; not PENDING: ``invalid_state``; holding a link, port or VLAN tag:
        ``not_compactable``), ``Forbidden`` (a quota) like a move would."""
        now = self.clock() if now_s is None else now_s
        try:
            reads = self._reads(project, [lease_id], batch=False)
            lease, start = self._compact(
                reads, lease_id, now, body.allow_host_swap, body.policy, body.generation
            )
        except _Stay as stay:
            if stay.reason == GONE:
                raise NotFound(f"no lease {lease_id}") from None
            status = stay.lease.status if stay.lease else ""
            if stay.reason == NOT_PENDING:
                raise ConcurrentUpdate(
                    f"lease {lease_id} is {status}; only PENDING leases move", code="invalid_state"
                ) from None
            raise ConcurrentUpdate(
                f"lease {lease_id} cannot be asked of find-slot: it holds a link, a facility port or a VLAN "
                "tag, a host outside any site, or (kept on its hosts) more hosts than a request may pin",
                code="not_compactable",
            ) from None
        return LeaseCompaction(
            lease=self.leases.get(lease_id, project=project),
            moved=start is not None,
            previous_start=to_datetime(lease.start),
            reason=None if start is not None else stay_reason(lease, now),
        )

    # -- a batch --------------------------------------------------------------------------------------------
    def compact_many(
        self, body: CompactLeases, *, project: str | None, now_s: int | None = None
    ) -> CompactionReport:
        """Compact ``body.leases`` in the order given, or (none given) the caller's project's PENDING
        leases in start order, at most ``body.limit``. Each lease is compacted as by ``compact`` in its
        own transaction and sees the moves before it; one that cannot move is reported with why."""
        now = self.clock() if now_s is None else now_s
        ids = list(body.leases) if body.leases is not None else self._pending(project, body.limit)
        reads = self._reads(project, ids, batch=self.batch_reads)
        out: list[CompactionOutcome] = []
        for lease_id in ids:
            out.append(self._outcome(reads, lease_id, now, body))
            reads.drop(lease_id)  # examined: a later mention of it reads it afresh
        return CompactionReport(items=out, moved=sum(o.moved for o in out))

    def _reads(self, project: str | None, ids: list[str], *, batch: bool) -> PassReads:
        return PassReads(self.db, project, lambda lease_id: self.read(lease_id, project), ids, batch)

    def _outcome(self, reads: PassReads, lease_id: str, now: int, body: CompactLeases) -> CompactionOutcome:
        try:
            lease, start = self._compact(reads, lease_id, now, body.allow_host_swap, body.policy, None)
        except _Stay as stay:
            seen = stay.lease
            return CompactionOutcome(
                lease=lease_id,
                name=seen.name if seen else "",
                moved=False,
                previous_start=to_datetime(seen.start) if seen else None,
                start=to_datetime(seen.start) if seen else None,
                reason=stay.reason,
            )
        except (Forbidden, ConcurrentUpdate) as exc:  # a quota, or a lease that kept changing: the next
            return CompactionOutcome(  # lease is compacted all the same
                lease=lease_id, name="", moved=False, previous_start=None, start=None, reason=exc.code
            )
        return CompactionOutcome(
            lease=lease_id,
            name=lease.name,
            moved=start is not None,
            previous_start=to_datetime(lease.start),
            start=to_datetime(lease.start if start is None else start),
            reason=None if start is not None else stay_reason(lease, now),
        )

    def _pending(self, project: str | None, limit: int) -> list[str]:
        """The PENDING leases of ``project`` (None: every project), earliest start first."""
        rows: list[Any] = []
        before: int | None = None
        with UnitOfWork(self.db, readonly=True) as uow:
            while True:
                page = uow.leases.page(
                    project=project, status=[PENDING], start_s=None, end_s=None, before=before, limit=500
                )
                rows.extend(page)
                if len(page) < 500:
                    break
                before = int(page[-1].id)
        rows.sort(key=lambda r: (int(r.start_s), int(r.id)))
        return [str(r.uuid) for r in rows[:limit]]

    # -- the use case ---------------------------------------------------------------------------------------
    def _compact(
        self,
        reads: PassReads,
        lease_id: str,
        now: int,
        swap: bool,
        policy: str,
        generation: int | None,
    ) -> tuple[LeaseRead, int | None]:
        """(the lease as read, its new start or None when it stays). Raises ``_Stay`` when it cannot
        move at all (not found, not PENDING, not made of host resources)."""
        for _ in range(self.max_attempts):
            lease = reads.get(lease_id)
            if lease is None:
                raise _Stay(GONE, None)
            if generation is not None and lease.generation != generation:
                raise ConcurrentUpdate(
                    f"lease {lease_id} is at generation {lease.generation}, not {generation}; re-read it",
                    [FieldError("/generation", f"stale; current {lease.generation}")],
                )
            if lease.status != PENDING:
                raise _Stay(NOT_PENDING, lease)
            if not lease.hosts_only:
                raise _Stay(NOT_COMPACTABLE, lease)
            if lease.start <= now:
                return lease, None
            cached = self.find_slot.calendar.current(now, arrived=reads.taken_at)
            if not reads.valid(lease, cached.generation):
                if reads.kept(lease):  # the calendar moved by more than this pass's own moves
                    reads.refresh()
                continue  # read both again
            topo = cached.index.topo
            known = host_maps(topo.hosts, topo.host_row).ids
            if any(pid not in known for pid in lease.vectors):
                raise _Stay(NOT_COMPACTABLE, lease)  # a host outside any site: find-slot never sees it
            try:
                found = self._earliest(lease, cached, now, swap, policy)
            except ValidationFailed:  # more pinned hosts than a find-slot request may name
                raise _Stay(NOT_COMPACTABLE, lease) from None
            if found is None:
                return lease, None
            window, grouped = found
            try:
                reads.moved(self._move(lease, cached, window, now, grouped, swap))
            except CapacityConflict:
                reads.drop(lease_id)
                continue  # another writer took the room after the calendar was read: ask again
            except ConcurrentUpdate as exc:
                if exc.code != "concurrent_update":
                    raise
                reads.drop(lease_id)
                continue  # the lease changed since it was read: read it again (a stale caller is refused)
            return lease, window.start
        raise ConcurrentUpdate(f"lease {lease_id}: the calendar kept changing; try again")

    def read(self, lease_id: str, project: str | None) -> LeaseRead | None:
        """The lease, its rows and the calendar generation, in one read transaction; None when there is
        no such lease in ``project``."""
        with UnitOfWork(self.db, readonly=True) as uow:
            row = uow.leases.find(lease_id)
            if row is None or (project is not None and row.project != project):
                return None
            rows = tuple(uow.leases.rows_from(int(row.id), 0))
            generation = uow.calendar.generation()
        return LeaseRead.of(lease_id, row, rows, generation)

    def _earliest(
        self, lease: LeaseRead, cached: CachedIndex, now: int, swap: bool, policy: str
    ) -> tuple[Window, bool] | None:
        """The earliest window for the lease's shape starting in [now, its start), on the calendar
        without it, and whether it is the swapping shape's (else the lease's own hosts). First a
        one-second window before its start on the calendar as it is (the lease's own rows begin at its
        start, so they cannot block it): any earlier window starts with such a second, so without one
        there is nothing to look for. The calendar without the lease is the cache's spare brought up
        to date, or a copy (``CalendarCache.without``). A window on other hosts is kept only when
        the lease's own hosts do not fit at that same start: hosts change only to start earlier."""
        topo = cached.index.topo
        components = shape(lease, topo.hosts, topo.host_row, swap)
        if not search(cached.index, cached.catalog, self.find_slot, components, now, lease.start, 1, policy):
            return None
        self.searches += 1
        with self.find_slot.calendar.without(cached, holding(lease)) as index:
            return self._earliest_on(index, lease, cached, components, now, swap, policy)

    def _earliest_on(
        self,
        index: CalendarIndex,
        lease: LeaseRead,
        cached: CachedIndex,
        components: list[dict[str, Any]],
        now: int,
        swap: bool,
        policy: str,
    ) -> tuple[Window, bool] | None:
        """``_earliest``'s searches on ``index``, the calendar without the lease."""
        topo = cached.index.topo
        duration = lease.end - lease.start
        found = search(index, cached.catalog, self.find_slot, components, now, lease.start, duration, policy)
        if found is None or not swap:
            return None if found is None else (found, swap)
        mine = sorted({str(r.name) for r in lease.rows})
        if sorted(h for hosts in found.placement.values() for h in hosts) == mine:
            return found, True  # on its own hosts already
        try:  # its own hosts at that start, if they fit: one candidate start, a short search
            pinned = shape(lease, topo.hosts, topo.host_row, False)
            own = search(
                index, cached.catalog, self.find_slot, pinned, found.start, found.start + 1, duration, policy
            )
        except ValidationFailed:  # more hosts than a request may pin: take the window found
            own = None
        return (own, False) if own is not None else (found, True)

    def _move(
        self, lease: LeaseRead, cached: CachedIndex, window: Window, now: int, grouped: bool, swap: bool
    ) -> CalendarChanges | None:
        """Book the window (``grouped``: found for the swapping shape): the lease's hosts become the
        window's (placement repointed first, so a further swap by the claim repoints from there), then
        ``move_in`` in the same transaction. Returns what the commit did to the calendar."""
        topo = cached.index.topo
        vectors = held(lease)
        wanted: list[tuple[int, str, int]] = []  # (host id, class, amount) per instance
        moves: dict[int, int] = {}  # old host id -> new host id
        for comp, olds in by_component(lease, topo.hosts, topo.host_row, grouped).items():
            news = [topo.hosts[topo.host_row[name]].id for name in window.placement[comp]]
            for pid in news:
                wanted.extend((pid, rc, n) for rc, n in sorted(vectors[olds[0]].items()))
            moves.update(pair(olds, news))

        def attempt(_n: int) -> CalendarChanges | None:
            with UnitOfWork(self.db) as uow:
                ids = {*moves, *moves.values(), *(pid for pid, _, _ in wanted)}
                uuid = {pid: str(r.uuid) for pid, r in uow.providers.by_id(sorted(ids)).items()}
                repoint_placement(uow, lease.consumer_id, {uuid[a]: uuid[b] for a, b in moves.items()})
                items = merged((uuid[pid], rc, n) for pid, rc, n in wanted)
                change = UpdateLease(
                    generation=lease.generation,
                    start=to_datetime(window.start),
                    end=to_datetime(window.start + lease.end - lease.start),
                    allow_host_swap=swap,
                )
                self.leases.move_in(uow, lease.id, change, items, now)
                changes = uow.changes
                uow.commit()
                return changes

        return retrying(attempt, self.max_attempts)


def stay_reason(lease: LeaseRead, now: int) -> str:
    return STARTED if lease.start <= now else NO_EARLIER


__all__ = ["LeaseCompactor", "shape"]
