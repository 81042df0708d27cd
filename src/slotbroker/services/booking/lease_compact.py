"""Compaction: move a PENDING lease to its earliest possible start, never later than it is.

Where it could go is a find-slot question about the lease's own shape, asked of the calendar *as if the
lease were gone* (its own rows must not block it): ``CachedIndex.without`` copies the cached index and
takes the lease's rows out with the engine's own removal, and ``find_slots`` searches the copy with the
request the lease stands for. The move is ``LeaseService.move_in``: the update's machinery (quotas, the
claim's capacity proof, the host-swap rule, the generation compare-and-swap, events) in one transaction.
Decision 0039 argues why the answer is exact and why a batch moves each lease in its own transaction.

The request a lease stands for: per host it holds, one instance of what it holds there. Kept on its hosts
(``allow_host_swap`` false), each host is a component pinned to it; allowed to swap, the hosts with the
same site, traits and amounts form one component of that many instances at that site, on hosts with
exactly those traits (the swap rule's stand-ins: same site, same traits, every class). A lease holding a
link, a facility port or a VLAN tag cannot be asked for that way and is not compacted.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from slotbroker.domain.claims import ClaimItem, ConsumerKind, ConsumerStatus
from slotbroker.domain.errors import (
    CapacityConflict,
    ConcurrentUpdate,
    FieldError,
    Forbidden,
    NotFound,
)
from slotbroker.domain.providers import ProviderKind
from slotbroker.domain.request import parse_request
from slotbroker.domain.time import now_s as wall_now
from slotbroker.domain.time import to_datetime
from slotbroker.engine import find_slots
from slotbroker.engine.calendar import CalendarIndex
from slotbroker.engine.results import Window
from slotbroker.engine.snapshot import AllocationSnap, HostSnap
from slotbroker.services.booking.alternates import repoint_placement
from slotbroker.services.booking.leases import LeaseService
from slotbroker.services.find_slot.calendar_cache import CachedIndex, Catalog
from slotbroker.services.find_slot.service import FindSlotService
from slotbroker.services.retry import MAX_ATTEMPTS, retrying
from slotbroker.store.calendar_changes import Holding
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


@dataclass(frozen=True)
class _Lease:
    """A lease as read for one compaction: its row and its rows, with the calendar generation read in
    the same transaction."""

    id: str
    consumer_id: int
    name: str
    project: str
    status: str
    start: int
    end: int
    generation: int
    rows: tuple[Any, ...]  # rows_from: (id, resource_class, amount, vlan_tag, pid, uuid, name, kind, ...)
    calendar_generation: int


class _Stay(Exception):
    def __init__(self, reason: str, lease: _Lease | None) -> None:
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
            lease, start = self._compact(
                lease_id, project, now, body.allow_host_swap, body.policy, body.generation
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
                f"lease {lease_id} holds a link, a facility port or a VLAN tag; only leases of host "
                "resources are compacted",
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
        out: list[CompactionOutcome] = []
        for lease_id in ids:
            out.append(self._outcome(lease_id, project, now, body))
        return CompactionReport(items=out, moved=sum(o.moved for o in out))

    def _outcome(
        self, lease_id: str, project: str | None, now: int, body: CompactLeases
    ) -> CompactionOutcome:
        try:
            lease, start = self._compact(lease_id, project, now, body.allow_host_swap, body.policy, None)
        except _Stay as stay:
            held = stay.lease
            return CompactionOutcome(
                lease=lease_id,
                name=held.name if held else "",
                moved=False,
                previous_start=to_datetime(held.start) if held else None,
                start=to_datetime(held.start) if held else None,
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
        lease_id: str,
        project: str | None,
        now: int,
        swap: bool,
        policy: str,
        generation: int | None,
    ) -> tuple[_Lease, int | None]:
        """(the lease as read, its new start or None when it stays). Raises ``_Stay`` when it cannot
        move at all (not found, not PENDING, not made of host resources)."""
        for _ in range(self.max_attempts):
            lease = self._read(lease_id, project)
            if generation is not None and lease.generation != generation:
                raise ConcurrentUpdate(
                    f"lease {lease_id} is at generation {lease.generation}, not {generation}; re-read it",
                    [FieldError("/generation", f"stale; current {lease.generation}")],
                )
            if lease.status != PENDING:
                raise _Stay(NOT_PENDING, lease)
            if any(r.kind != ProviderKind.HOST.value or r.vlan_tag is not None for r in lease.rows):
                raise _Stay(NOT_COMPACTABLE, lease)
            if lease.start <= now:
                return lease, None
            cached = self.find_slot.calendar.current(now)
            if cached.generation != lease.calendar_generation:
                continue  # the calendar moved between the two reads: read both again
            window = self._earliest(lease, cached, now, swap, policy)
            if window is None:
                return lease, None
            try:
                self._move(lease, cached, window, now, swap)
            except CapacityConflict:
                continue  # another writer took the room after the calendar was read: ask again
            except ConcurrentUpdate as exc:
                if exc.code != "concurrent_update":
                    raise
                continue  # the lease changed since it was read: read it again (a stale caller is refused)
            return lease, window.start
        raise ConcurrentUpdate(f"lease {lease_id}: the calendar kept changing; try again")

    def _read(self, lease_id: str, project: str | None) -> _Lease:
        with UnitOfWork(self.db, readonly=True) as uow:
            row = uow.leases.find(lease_id)
            if row is None or (project is not None and row.project != project):
                raise _Stay(GONE, None)
            rows = tuple(uow.leases.rows_from(int(row.id), 0))
            generation = uow.calendar.generation()
        return _Lease(
            id=lease_id,
            consumer_id=int(row.id),
            name=str(row.name),
            project=str(row.project),
            status=str(row.status),
            start=int(row.start_s),
            end=int(row.end_s),
            generation=int(row.generation),
            rows=rows,
            calendar_generation=generation,
        )

    def _earliest(
        self, lease: _Lease, cached: CachedIndex, now: int, swap: bool, policy: str
    ) -> Window | None:
        """The earliest window for the lease's shape starting in [now, its start), on the calendar
        without it. First a one-second window before its start on the calendar as it is (the lease's
        own rows begin at its start, so they cannot block it): any earlier window starts with such a
        second, so without one there is nothing to look for and nothing is copied."""
        topo = cached.index.topo
        components = shape(lease, topo.hosts, topo.host_row, swap)
        if not _search(cached.index, cached.catalog, self.find_slot, components, now, lease.start, 1, policy):
            return None
        self.searches += 1
        gone = Holding(
            lease.consumer_id,
            lease.status,
            ConsumerKind.LEASE.value,
            None,
            tuple(
                AllocationSnap(int(r.pid), str(r.resource_class), int(r.amount), lease.start, lease.end, None)
                for r in lease.rows
            ),
        )
        index = cached.without(gone)
        duration = lease.end - lease.start
        return _search(index, cached.catalog, self.find_slot, components, now, lease.start, duration, policy)

    def _move(self, lease: _Lease, cached: CachedIndex, window: Window, now: int, swap: bool) -> None:
        """Book the window: the lease's hosts become the window's (placement repointed first, so a
        further swap by the claim repoints from there), then ``move_in`` in the same transaction."""
        topo = cached.index.topo
        vectors = _vectors(lease)
        wanted: list[tuple[int, str, int]] = []  # (host id, class, amount) per instance
        moves: dict[int, int] = {}  # old host id -> new host id
        for comp, olds in _by_component(lease, topo.hosts, topo.host_row, swap).items():
            news = [topo.hosts[topo.host_row[name]].id for name in window.placement[comp]]
            for pid in news:
                wanted.extend((pid, rc, n) for rc, n in sorted(vectors[olds[0]].items()))
            moves.update(_pair(olds, news))

        def attempt(_n: int) -> None:
            with UnitOfWork(self.db) as uow:
                ids = {*moves, *moves.values(), *(pid for pid, _, _ in wanted)}
                uuid = {pid: str(r.uuid) for pid, r in uow.providers.by_id(sorted(ids)).items()}
                repoint_placement(uow, lease.consumer_id, {uuid[a]: uuid[b] for a, b in moves.items()})
                items = _merged((uuid[pid], rc, n) for pid, rc, n in wanted)
                change = UpdateLease(
                    generation=lease.generation,
                    start=to_datetime(window.start),
                    end=to_datetime(window.start + lease.end - lease.start),
                    allow_host_swap=swap,
                )
                self.leases.move_in(uow, lease.id, change, items, now)
                uow.commit()

        retrying(attempt, self.max_attempts)


# -- the request a lease stands for -------------------------------------------------------------------------


def _vectors(lease: _Lease) -> dict[int, dict[str, int]]:
    """Host id -> class -> amount the lease holds there."""
    out: dict[int, dict[str, int]] = defaultdict(dict)
    for r in lease.rows:
        cls = str(r.resource_class)
        out[int(r.pid)][cls] = out[int(r.pid)].get(cls, 0) + int(r.amount)
    return dict(out)


def _by_component(
    lease: _Lease, hosts: Sequence[HostSnap], host_row: dict[str, int], swap: bool
) -> dict[str, list[int]]:
    """Component name -> the lease's host ids it stands for (see the module), in a stable order."""
    vectors = _vectors(lease)
    snaps = {h.id: h for h in (hosts[i] for i in host_row.values()) if h.id in vectors}
    groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for pid in sorted(vectors, key=lambda p: snaps[p].name if p in snaps else str(p)):
        if pid not in snaps:
            raise KeyError(pid)  # a host the index does not know: never expected (same generation)
        h = snaps[pid]
        key = (h.site, h.traits, tuple(sorted(vectors[pid].items()))) if swap else (h.name,)
        groups[key].append(pid)
    return {f"c{i}": pids for i, pids in enumerate(groups.values())}


def shape(
    lease: _Lease, hosts: Sequence[HostSnap], host_row: dict[str, int], swap: bool
) -> list[dict[str, Any]]:
    """The find-slot components the lease stands for (see the module)."""
    vectors = _vectors(lease)
    by_id = {hosts[i].id: hosts[i] for i in host_row.values()}
    out: list[dict[str, Any]] = []
    for comp, pids in _by_component(lease, hosts, host_row, swap).items():
        h = by_id[pids[0]]
        doc: dict[str, Any] = {"name": comp, "count": len(pids), "resources": dict(vectors[pids[0]])}
        if swap:
            others = {t for x in hosts if x.site == h.site for t in x.traits}
            doc.update(
                site=h.site, required_traits=sorted(h.traits), forbidden_traits=sorted(others - h.traits)
            )
        else:
            doc["host"] = h.name
        out.append(doc)
    return out


def _search(
    index: CalendarIndex,
    catalog: Catalog,
    find_slot: FindSlotService,
    components: list[dict[str, Any]],
    now: int,
    before: int,
    duration: int,
    policy: str,
) -> Window | None:
    """The earliest window of ``components`` for ``duration`` starting in [now, before), by find-slot's
    own parser and search, within its longest range."""
    latest_end = min(before - 1 + duration, now + find_slot.settings.max_range_s)
    if latest_end - now < duration:
        return None
    doc = {
        "components": components,
        "duration": duration,
        "earliest_start": to_datetime(now).isoformat(),
        "latest_end": to_datetime(latest_end).isoformat(),
        "limit": 1,
        "alternates": 0,
        "policy": policy,
        "explain": False,
    }
    req = parse_request(
        doc,
        max_range_s=find_slot.settings.max_range_s,
        custom_classes=catalog.custom_classes,
        custom_traits=catalog.custom_traits,
    )
    found = find_slots(index, req, explain=False)
    return found.windows[0] if found.windows else None


def _pair(olds: list[int], news: list[int]) -> dict[int, int]:
    """Which old host each instance's new host replaces: a host in both stays; the rest pair in order."""
    kept = set(olds) & set(news)
    gone = [h for h in olds if h not in kept]
    came = [h for h in news if h not in kept]
    return dict(zip(gone, came, strict=False))


def _merged(items: Iterable[tuple[str, str, int]]) -> tuple[ClaimItem, ...]:
    """One item per (host, class): instances the window put on one host add up."""
    total: Counter[tuple[str, str]] = Counter()
    for uuid, rc, amount in items:
        total[(uuid, rc)] += amount
    return tuple(ClaimItem(u, rc, n, None) for (u, rc), n in total.items())


def stay_reason(lease: _Lease, now: int) -> str:
    return STARTED if lease.start <= now else NO_EARLIER


__all__ = ["LeaseCompactor", "shape"]
