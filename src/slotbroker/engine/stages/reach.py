"""Skip-ahead from per-host feasible-start sets: where a component could possibly start.

For one component and each eligible host, ``F_h`` is the set of starts ``t`` at which the host alone
holds one instance for the whole (minimum) window: the gaps of length >= duration between the times
the host's usage of *any* needed class is above ``capacity - demand`` (blocked spans from every class,
merged). A start ``t`` can only be feasible for the request if some site has hosts with ``t`` in
``F_h`` that could take ``count`` instances between them (each at most ``capacity // demand``); the
set of such ``t`` is the component's *reach*. It is computed by one sweep over the interval ends per
site (vectorised), cached per plan and per component, and answers "first possible start at or after
``t``" with one ``searchsorted``. For whole-host instances of a single component it is exact.

Reaches are computed over a chunk of the range (``[lo, hi]`` starts) and extended, doubling, only when
a query runs past the chunk, so a request that fits early never pays for the whole range."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from slotbroker.engine.calendar import CalendarIndex
from slotbroker.engine.plan import CompPlan, Plan
from slotbroker.engine.stages.base import NEVER
from slotbroker.engine.stages.free_starts import SHIFT, free_starts
from slotbroker.engine.stages.intervals import at_least, group_coverage, union
from slotbroker.engine.steps import StepTable

I64 = npt.NDArray[np.int64]
MIN_CHUNK_S = 86_400  # first chunk of starts covered: max(MIN_CHUNK_S, CHUNK_DURATIONS x duration)
CHUNK_DURATIONS = 4


@dataclass(frozen=True)
class Reach:
    """Disjoint sorted intervals ``[starts[k], ends[k])`` of possible starts, valid in [lo, hi]."""

    lo: int
    hi: int
    starts: I64
    ends: I64

    def next_in(self, t: int) -> int | None:
        """The first possible start >= ``t`` inside [lo, hi], or None (none up to ``hi``)."""
        k = int(np.searchsorted(self.ends, t, side="right"))
        if k == self.ends.shape[0]:
            return None
        x = max(int(self.starts[k]), t)
        return x if x <= self.hi else None


def _site_cover(index: CalendarIndex, plan: Plan, comp: CompPlan, lo: int, hi: int) -> tuple[I64, I64, I64]:
    """(site, starts, ends): per site, the starts in [lo, hi] at which that site's hosts could take all
    of ``comp``'s instances, each host alone holding its share over the whole window."""
    rows, most, site, thresholds = _cover_rows(index, plan, comp)
    if rows.shape[0] == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    specs: list[tuple[StepTable | None, I64]] = [(index.host.get(cn), thr) for cn, thr in thresholds]

    def worth(o: I64, x: I64, y: I64) -> npt.NDArray[np.bool_]:
        """Only intervals meeting their site's coverage computed from the supersets: coverage from
        the exact intervals lies inside it, and an interval that misses it adds to no start there."""
        gg, gs, ge = group_coverage(site[o], most[o], comp.count, x, y)
        if gg.shape[0] == 0:
            return np.zeros(o.shape[0], dtype=bool)
        key = gg * SHIFT + (ge - lo)  # ordered by site, then time
        k = np.searchsorted(key, site[o] * SHIFT + (x - lo), side="right")  # first cover ending after x
        kc = np.minimum(k, key.shape[0] - 1)
        hit: npt.NDArray[np.bool_] = (k < key.shape[0]) & (gg[kc] == site[o]) & (gs[kc] <= y)
        return hit

    # when every host alone can take all instances, each interval is its site's coverage by itself:
    # ``worth`` would keep every one, so the superset pass is skipped
    alone = int(most.min()) >= comp.count
    o, x, y = free_starts(specs, rows, lo, hi, plan.min_duration, None if alone else worth)
    return group_coverage(site[o], most[o], comp.count, x, y)


def _cover_rows(
    index: CalendarIndex, plan: Plan, comp: CompPlan
) -> tuple[I64, I64, I64, list[tuple[str, I64]]]:
    """The time-free part of a component's cover (once per request shape, in ``Plan.static``): the
    hosts that can hold an instance at all, how many each could hold (``capacity // demand``), their
    sites, and per needed class the usage above which a host cannot hold one (``capacity - demand``)."""
    # plans share ``static`` when their classes and eligible host arrays are the same; count and
    # demand may still differ, so they are part of the key
    key = f"cover_rows:{comp.idx}:{comp.count}:{comp.demand.tolist()}"
    got: tuple[I64, I64, I64, list[tuple[str, I64]]] | None = plan.static.get(key)
    if got is None:
        topo = index.topo
        rows = comp.hosts
        most = np.full(rows.shape[0], comp.count, dtype=np.int64)
        thresholds: list[tuple[str, I64]] = []
        for ci, cn in enumerate(plan.classes):
            dem = int(comp.demand[ci])
            if dem <= 0:
                continue
            cap = topo.host_cap[cn][rows] if cn in topo.host_cap else np.zeros(rows.shape[0], np.int64)
            most = np.minimum(most, cap // dem)
            thresholds.append((cn, cap - dem))
        live = most > 0
        if not live.all():
            rows, most = rows[live], most[live]
            thresholds = [(cn, thr[live]) for cn, thr in thresholds]
        got = plan.static[key] = (rows, most, topo.host_site[rows], thresholds)
    return got


def _cover(index: CalendarIndex, plan: Plan, comp: CompPlan, lo: int, hi: int) -> tuple[I64, I64, I64]:
    """``_site_cover``, shared by components that ask the same (count, demand, eligible hosts) over the
    same starts: a group of identical members, or a component and its group asking one chunk."""
    key = ("cover", comp.count, comp.demand.tobytes(), comp.hosts.tobytes(), lo, hi)
    got: tuple[I64, I64, I64] | None = plan.cache.get(key)
    if got is None:
        got = plan.cache[key] = _site_cover(index, plan, comp, lo, hi)
    return got


def _build(index: CalendarIndex, plan: Plan, comp: CompPlan, lo: int, hi: int) -> Reach:
    _, gs, ge = _cover(index, plan, comp, lo, hi)
    starts, ends = union(gs, ge)
    return Reach(lo, hi, starts, ends)


def _build_group(
    index: CalendarIndex, plan: Plan, kind: str, members: tuple[int, ...], lo: int, hi: int
) -> Reach:
    """A group's joint reach: starts at which its components could be placed on sites together.

    ``different_sites``: the components need distinct sites, so some site must serve each of them and,
    for every subset of them, the sites serving at least one member must number at least the subset's
    size (Hall's condition: exactly when distinct sites can be matched to all). ``same_site``: one site
    must serve every member at once. Both only ever rule starts out that no placement could use."""
    covers = {c: _cover(index, plan, plan.comps[c], lo, hi) for c in members}
    if kind == "same_site":
        per_site: list[tuple[I64, I64]] = []
        sites = set.intersection(*(set(covers[c][0].tolist()) for c in members)) if members else set()
        for s in sorted(sites):
            parts = [(gs[g == s], ge[g == s]) for g, gs, ge in (covers[c] for c in members)]
            st = np.concatenate([p[0] for p in parts])
            en = np.concatenate([p[1] for p in parts])
            # the members' own intervals are disjoint per site: all of them overlap where |members| do
            per_site.append(at_least(st, en, len(members)))
        if not per_site:
            return Reach(lo, hi, np.zeros(0, np.int64), np.zeros(0, np.int64))
        starts, ends = union(
            np.concatenate([p[0] for p in per_site]), np.concatenate([p[1] for p in per_site])
        )
        return Reach(lo, hi, starts, ends)
    ok_s: list[I64] = []
    ok_e: list[I64] = []
    subsets = [sub for k in range(1, len(members) + 1) for sub in itertools.combinations(members, k)]
    for sub in subsets:
        g = np.concatenate([covers[c][0] for c in sub])
        gs = np.concatenate([covers[c][1] for c in sub])
        ge = np.concatenate([covers[c][2] for c in sub])
        # per site, the union of the subset's intervals (a site serving several members counts once)
        site_s: list[I64] = []
        site_e: list[I64] = []
        for s in np.unique(g).tolist():
            us, ue = union(gs[g == s], ge[g == s])
            site_s.append(us)
            site_e.append(ue)
        if not site_s:
            return Reach(lo, hi, np.zeros(0, np.int64), np.zeros(0, np.int64))
        a, b = at_least(np.concatenate(site_s), np.concatenate(site_e), len(sub))
        ok_s.append(a)
        ok_e.append(b)
    starts, ends = at_least(np.concatenate(ok_s), np.concatenate(ok_e), len(subsets))
    return Reach(lo, hi, starts, ends)


MAX_HALL_MEMBERS = 6  # different-sites groups up to this size get the joint reach (2^k - 1 subsets)


def _next_in_chunks(plan: Plan, key: str, t: int, build: Callable[[int, int], Reach]) -> int:
    latest = plan.latest_start
    while t <= latest:
        r: Reach | None = plan.cache.get(key)
        if r is None or not r.lo <= t <= r.hi:
            prev = 0 if r is None else r.hi - r.lo + 1
            span = max(MIN_CHUNK_S, CHUNK_DURATIONS * plan.min_duration, 2 * prev)
            r = build(t, min(latest, t + span - 1))
            plan.cache[key] = r
        got = r.next_in(t)
        if got is not None:
            return got
        t = r.hi + 1
    return NEVER


def next_possible(index: CalendarIndex, plan: Plan, comp: CompPlan, t: int) -> int:
    """The first start >= ``t`` in ``comp``'s reach (``NEVER`` if none up to the latest start). Every
    start in [t, answer) is infeasible for the request."""
    return _next_in_chunks(plan, f"reach:{comp.idx}", t, lambda lo, hi: _build(index, plan, comp, lo, hi))


def groups_next_possible(index: CalendarIndex, plan: Plan, t: int) -> int:
    """The first start >= ``t`` that every site group's joint reach admits (``t`` when there are no
    groups); every start in [t, answer) is infeasible for the request."""
    best = t
    groups = [("same_site", g) for g in plan.same_site if len(g) > 1]
    groups += [("different_sites", g) for g in plan.different_sites if 1 < len(g) <= MAX_HALL_MEMBERS]
    for i, (kind, g) in enumerate(groups):
        members = tuple(sorted(g))

        def build(lo: int, hi: int, kind: str = kind, members: tuple[int, ...] = members) -> Reach:
            return _build_group(index, plan, kind, members, lo, hi)

        got = _next_in_chunks(plan, f"group:{kind}:{i}", best, build)
        best = max(best, got)
    return best


def known_next(plan: Plan, t: int) -> tuple[int, int] | None:
    """From the reaches already computed (no new work): the largest first-possible start >= ``t``
    over the components and that component, or None when every cached reach admits ``t``."""
    best: tuple[int, int] | None = None
    for c in plan.comps:
        r: Reach | None = plan.cache.get(f"reach:{c.idx}")
        if r is None or not r.lo <= t <= r.hi:
            continue
        got = r.next_in(t)
        nxt = r.hi + 1 if got is None else got
        if nxt > t and (best is None or nxt > best[0]):
            best = (nxt, c.idx)
    return best


def admitted(plan: Plan, t: int) -> bool:
    """Every component has a reach computed over ``t`` (no new work) and each admits ``t``: the start
    is likely to fit, so the search may try its selector before the site summaries."""
    for c in plan.comps:
        r: Reach | None = plan.cache.get(f"reach:{c.idx}")
        if r is None or not r.lo <= t <= r.hi or r.next_in(t) != t:
            return False
    return True
