"""Stage 5: policy plugins. Each policy orders sites and hosts (the selector tries them in that order)
and scores a finished window. They read only what the selector hands them.

* ``earliest`` (default) / ``best_fit``: tightest site and host first, keeping big holes for big
  requests; ``first_fit``: plain name/row order, cheapest; ``spread``: emptiest first;
  ``latency``: sites closest (by link latency) to the components they link to; ``least_gap``:
  time-aware, hosts whose bookings the window would abut first (least idle time left before and after
  it, ``idle_gaps``), then tightest, so free time is not cut into pieces too short for later requests.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from slotbroker.domain.request import Policy
from slotbroker.engine.calendar import CalendarIndex
from slotbroker.engine.plan import Plan
from slotbroker.engine.topology import Topology

I64 = npt.NDArray[np.int64]
READS = frozenset({"window.host_free", "host.capacity", "host.usage", "site.latency", "selector.assignment"})
UTILISATION_POLICIES = frozenset({Policy.BEST_FIT, Policy.SPREAD})  # the scores that read utilisation
NO_NEIGHBOUR = 2**40  # the idle gap on a side of the window where the host has no booking at all


def host_order(policy: Policy, free: I64, cap: I64, gaps: I64 | None = None) -> list[int]:
    """Preference order of local hosts (rows of ``free``), ties by row for determinism. ``gaps``
    (``least_gap`` only): each host's idle time around the window, the first key."""
    n = free.shape[0]
    if policy == Policy.FIRST_FIT or n == 0:
        return list(range(n))
    frac = (free / np.maximum(cap, 1)).sum(axis=1) if free.shape[1] else np.zeros(n)
    key = -frac if policy == Policy.SPREAD else frac
    if policy != Policy.LEAST_GAP or gaps is None:
        return list(np.argsort(key, kind="stable").tolist())  # a stable sort: ties stay in row order
    return list(np.lexsort((np.arange(n), key, gaps)).tolist())


def first_host(policy: Policy, free: I64, cap: I64) -> int:
    """``host_order(policy, free, cap)[0]`` for a non-empty ``free``, without ordering the rest (a
    single instance goes to the first host of the order): the same key, its first minimum."""
    n = free.shape[0]
    if policy == Policy.FIRST_FIT or n == 1 or not free.shape[1]:
        return 0
    frac = (free / np.maximum(cap, 1)).sum(axis=1)
    return int(np.argmax(frac) if policy == Policy.SPREAD else np.argmin(frac))


def idle_gaps(index: CalendarIndex, plan: Plan, rows: I64, s: int, e: int) -> I64:
    """Per host row: how long its usage of the request's classes stays unchanged before ``s`` (counted
    from the range start at most: what ended earlier is gone from the index) plus after ``e``
    (``NO_NEIGHBOUR`` when nothing follows). 0 + 0 means the window would fill a hole exactly. Every
    row at once from each table's ``neighbours``: a row's last event at or before ``s`` and first at
    or after ``e``, which is what the per-row reading (``series`` and two searches) looked up."""
    out = np.zeros(rows.shape[0], dtype=np.int64)
    for cls in plan.classes:
        table = index.host.get(cls)
        if table is None:
            out += NO_NEIGHBOUR
            continue
        prev, nxt = table.neighbours(rows, s, e)
        before = s - np.maximum(np.where(prev >= 0, prev, plan.range_start), plan.range_start)
        out += np.maximum(before, 0) + np.where(nxt >= 0, nxt - e, NO_NEIGHBOUR)
    return out


def site_order(
    policy: Policy,
    plan: Plan,
    topo: Topology,
    comp: int,
    sites: I64,
    room: I64,
    assigned: dict[int, int],
) -> list[int]:
    """Preference order of candidate ``sites`` (ascending) for ``comp``; ``room[k]`` is how many
    instances site ``sites[k]``'s hosts could take one by one (a tightness measure)."""
    peers = [g for g in plan.spread if comp in g]
    if not peers and policy != Policy.LATENCY:
        if policy == Policy.FIRST_FIT:
            order: list[int] = sites.tolist()  # int64 arrays give Python ints
            return order
        tight = -room if policy == Policy.SPREAD else room
        ranked: list[int] = sites[np.lexsort((sites, tight))].tolist()
        return ranked
    room_of: dict[int, int] = dict(zip(sites.tolist(), room.tolist(), strict=True))

    def crowd(site: int) -> int:
        return sum(1 for g in peers for o in g if o != comp and assigned.get(o) == site)

    def latency(site: int) -> float:
        total = 0.0
        for lk in plan.links:
            other = lk.b if lk.a == comp else lk.a if lk.b == comp else None
            if other is not None and other in assigned:
                total += _finite(float(topo.latency[site, assigned[other]]))
        for p in plan.ports:
            if p.comp == comp and p.site >= 0:
                total += _finite(float(topo.latency[site, p.site]))
        return total

    def key(site: int) -> tuple[float, ...]:
        name_rank = float(site)
        if policy == Policy.FIRST_FIT:
            return (crowd(site), name_rank)
        if policy == Policy.SPREAD:
            return (crowd(site), -room_of[site], name_rank)
        if policy == Policy.LATENCY:
            return (crowd(site), latency(site), room_of[site], name_rank)
        return (crowd(site), room_of[site], name_rank)

    return sorted(room_of, key=key)


def _finite(latency_ms: float) -> float:
    """An unreachable pair ranks last (1e9 ms), not as infinity (which would tie every such site)."""
    return latency_ms if latency_ms != float("inf") else 1e9


def window_score(policy: Policy, plan: Plan, start: int, utilisation: float, latency_ms: float) -> float:
    """Higher is better, in [0, 1]. ``utilisation``: mean used fraction of the chosen hosts after
    placement (read only under ``UTILISATION_POLICIES``); ``latency_ms``: total latency of the chosen
    routes."""
    if policy == Policy.BEST_FIT:
        return round(utilisation, 6)
    if policy == Policy.SPREAD:
        return round(1.0 - utilisation, 6)
    if policy == Policy.LATENCY:
        return round(1.0 / (1.0 + latency_ms), 6)
    span = max(1, plan.latest_start - plan.range_start)
    return round(1.0 - (start - plan.range_start) / span, 6)
