"""The find-slot request a PENDING lease stands for, for compaction (``lease_compact.py``).

Per host the lease holds, one instance of what it holds there. Kept on its hosts, each host is a
component pinned to it; allowed to swap, the hosts with the same site, traits and amounts form one
component of that many instances at that site, on hosts with exactly those traits (the swap rule's
stand-ins, ``alternates.py``: same site, same traits, every class). The search is find-slot's own parser
and ``find_slots``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from slotbroker.domain.claims import ClaimItem, ConsumerKind
from slotbroker.domain.providers import ProviderKind
from slotbroker.domain.request import parse_request
from slotbroker.domain.time import to_datetime
from slotbroker.engine import find_slots
from slotbroker.engine.calendar import CalendarIndex
from slotbroker.engine.results import Window
from slotbroker.engine.snapshot import AllocationSnap, HostSnap
from slotbroker.services.find_slot.calendar_cache import Catalog
from slotbroker.services.find_slot.service import FindSlotService
from slotbroker.store.calendar_changes import Holding


@dataclass(frozen=True)
class LeaseRead:
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

    @classmethod
    def of(cls, lease_id: str, head: Any, rows: tuple[Any, ...], calendar_generation: int) -> LeaseRead:
        """From the lease's consumer row ``head`` (id, name, project, status, start_s, end_s,
        generation), its rows and the generation read with them."""
        return cls(
            id=lease_id,
            consumer_id=int(head.id),
            name=str(head.name),
            project=str(head.project),
            status=str(head.status),
            start=int(head.start_s),
            end=int(head.end_s),
            generation=int(head.generation),
            rows=rows,
            calendar_generation=calendar_generation,
        )

    @cached_property
    def hosts_only(self) -> bool:
        """Every row is a host's, without a VLAN tag: what compaction and re-placing can ask for."""
        return all(r.kind == ProviderKind.HOST.value and r.vlan_tag is None for r in self.rows)

    @cached_property
    def vectors(self) -> dict[int, dict[str, int]]:
        """``held``'s answer, summed once: a compaction asks it for the shape, the search and the move,
        and the rows (one per host and class, dozens for a wide job) do not change in a ``LeaseRead``."""
        out: dict[int, dict[str, int]] = defaultdict(dict)
        for r in self.rows:
            cls = str(r.resource_class)
            out[int(r.pid)][cls] = out[int(r.pid)].get(cls, 0) + int(r.amount)
        return dict(out)


@dataclass(frozen=True)
class HostMaps:
    """What the shape reads of a topology, by key instead of by a scan of every host: each host of
    ``host_row`` by id, the ids of ``hosts``, and per site the traits some host there has."""

    by_id: Mapping[int, HostSnap]
    ids: frozenset[int]
    site_traits: Mapping[str, frozenset[str]]


_maps: tuple[Sequence[HostSnap], Mapping[str, int], HostMaps] | None = None


def host_maps(hosts: Sequence[HostSnap], host_row: Mapping[str, int]) -> HostMaps:
    """``HostMaps`` of a topology's ``hosts`` and ``host_row``, built once per topology: an index's
    topology is replaced, never changed, so the last one's maps serve while the same objects are
    asked (kept by reference, so their identity cannot be reused)."""
    global _maps
    last = _maps
    if last is not None and last[0] is hosts and last[1] is host_row:
        return last[2]
    traits: dict[str, set[str]] = defaultdict(set)
    for x in hosts:
        traits[x.site].update(x.traits)
    maps = HostMaps(
        by_id={hosts[i].id: hosts[i] for i in host_row.values()},
        ids=frozenset(h.id for h in hosts),
        site_traits={site: frozenset(ts) for site, ts in traits.items()},
    )
    _maps = (hosts, host_row, maps)
    return maps


def holding(lease: LeaseRead) -> Holding:
    """The lease as the calendar counts it: each row over the lease's times (a PENDING lease's rows all
    span them), for ``CachedIndex.without``."""
    rows = tuple(
        AllocationSnap(int(r.pid), str(r.resource_class), int(r.amount), lease.start, lease.end, None)
        for r in lease.rows
    )
    return Holding(lease.consumer_id, lease.status, ConsumerKind.LEASE.value, None, rows)


def held(lease: LeaseRead) -> dict[int, dict[str, int]]:
    """Host id -> class -> amount the lease holds there (a copy: the caller may change it)."""
    return {pid: dict(v) for pid, v in lease.vectors.items()}


def by_component(
    lease: LeaseRead, hosts: Sequence[HostSnap], host_row: dict[str, int], swap: bool
) -> dict[str, list[int]]:
    """Component name -> the lease's host ids it stands for (see the module), in a stable order."""
    vectors = lease.vectors
    by_id = host_maps(hosts, host_row).by_id
    snaps = {pid: by_id[pid] for pid in vectors if pid in by_id}
    groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for pid in sorted(vectors, key=lambda p: snaps[p].name if p in snaps else str(p)):
        if pid not in snaps:
            raise KeyError(pid)  # a host the index does not know: never expected (same generation)
        h = snaps[pid]
        key = (h.site, h.traits, tuple(sorted(vectors[pid].items()))) if swap else (h.name,)
        groups[key].append(pid)
    return {f"c{i}": pids for i, pids in enumerate(groups.values())}


def shape(
    lease: LeaseRead, hosts: Sequence[HostSnap], host_row: dict[str, int], swap: bool
) -> list[dict[str, Any]]:
    """The find-slot components the lease stands for (see the module)."""
    vectors = lease.vectors
    maps = host_maps(hosts, host_row)
    out: list[dict[str, Any]] = []
    for comp, pids in by_component(lease, hosts, host_row, swap).items():
        h = maps.by_id[pids[0]]
        doc: dict[str, Any] = {"name": comp, "count": len(pids), "resources": dict(vectors[pids[0]])}
        if swap:
            others = maps.site_traits.get(h.site, frozenset())
            doc.update(
                site=h.site, required_traits=sorted(h.traits), forbidden_traits=sorted(others - h.traits)
            )
        else:
            doc["host"] = h.name
        out.append(doc)
    return out


def search(
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


def pair(olds: list[int], news: list[int]) -> dict[int, int]:
    """Which old host each instance's new host replaces: a host in both stays; the rest pair in order."""
    kept = set(olds) & set(news)
    gone = [h for h in olds if h not in kept]
    came = [h for h in news if h not in kept]
    return dict(zip(gone, came, strict=False))


def merged(items: Iterable[tuple[str, str, int]]) -> tuple[ClaimItem, ...]:
    """One item per (host, class): instances the window put on one host add up."""
    total: Counter[tuple[str, str]] = Counter()
    for uuid, rc, amount in items:
        total[(uuid, rc)] += amount
    return tuple(ClaimItem(u, rc, n, None) for (u, rc), n in total.items())
