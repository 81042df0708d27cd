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
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from slotbroker.engine.calendar import CalendarIndex
from slotbroker.engine.plan import CompPlan, Plan
from slotbroker.engine.stages.base import NEVER
from slotbroker.engine.steps import StepTable

I64 = npt.NDArray[np.int64]
MIN_CHUNK_S = 86_400  # first chunk of starts covered: max(MIN_CHUNK_S, CHUNK_DURATIONS x duration)
CHUNK_DURATIONS = 4
_SHIFT = np.int64(1 << 36)  # row key stride for per-row running maxima (spans are < 2**36 s long)


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


Worth = Callable[[I64, I64, I64], npt.NDArray[np.bool_]]


def free_starts(
    specs: list[tuple[StepTable | None, I64]],
    rows: I64,
    lo: int,
    hi: int,
    d: int,
    worth: Worth | None = None,
) -> tuple[I64, I64, I64]:
    """Per row (``i`` indexes ``rows``), inclusive intervals ``[x, y]`` of starts in [lo, hi] at which
    every table's row stays at or below its threshold over [t, t + d): from the block grids where they
    can answer (``Coarse``), else from every event (``free_starts_exact``); both give the same
    intervals (a differential test holds them equal).

    ``worth(o, x, y)``, given a superset of the answer (intervals that contain the exact ones), may
    say which of them the caller has no use for; those are left out unread. The caller must only
    drop intervals whose every subset is useless to it."""
    coarse = Coarse.of(specs, rows, lo, hi, d)
    if coarse is None:
        return free_starts_exact(specs, rows, lo, hi, d)
    if worth is not None:
        o, x, y = coarse.loose()
        ok = x <= y
        use = np.zeros(ok.shape[0], dtype=bool)
        use[ok] = worth(o[ok], x[ok], y[ok])
        coarse = coarse.only(use)
    return coarse.exact()


def free_starts_blocks(
    specs: list[tuple[StepTable | None, I64]], rows: I64, lo: int, hi: int, d: int
) -> tuple[I64, I64, I64] | None:
    """``free_starts`` from the block grids alone, or None where they cannot answer (for tests)."""
    coarse = Coarse.of(specs, rows, lo, hi, d)
    return None if coarse is None else coarse.exact()


def _stretches(o: I64, a: I64, b: I64, n: int, lo: int, far: int) -> tuple[I64, I64, I64]:
    """The free stretches ``[fx, fy)`` of rows 0..n-1 in [lo, far) around the blocked spans
    ``(o, a, b)`` (any order, may overlap): before each span within its row, after the row's last span,
    and the whole range for rows without spans. Stretches may be empty (fx == fy)."""
    order = np.argsort(o * _SHIFT + (a - lo))  # by row, then start (one int64 key: faster than lexsort)
    o, a, b = o[order], a[order], b[order]
    # covered-until: running max of span ends within each row (keys ordered by row, then end)
    cov = np.maximum.accumulate(o * _SHIFT + (b - lo)) - o * _SHIFT + lo
    first = np.ones(o.shape[0], dtype=bool)
    first[1:] = o[1:] != o[:-1]
    prev = np.empty(o.shape[0], dtype=np.int64)
    if o.shape[0]:
        prev[0] = lo
        prev[1:] = cov[:-1]
        prev[first] = lo
    last = np.ones(o.shape[0], dtype=bool)
    last[:-1] = o[1:] != o[:-1]
    bare = np.ones(n, dtype=bool)
    bare[o] = False
    bare_rows = np.flatnonzero(bare)
    fo = np.concatenate([o, o[last], bare_rows])
    fx = np.concatenate([prev, cov[last], np.full(bare_rows.shape[0], lo, np.int64)])
    fy = np.concatenate([a, np.full(int(last.sum()) + bare_rows.shape[0], far, np.int64)])
    return fo, fx, fy


def _dirty_runs(dirty: npt.NDArray[np.bool_]) -> tuple[I64, I64, I64]:
    """Runs of dirty blocks in a (blocks x rows) grid view: (row, first block, one past the last),
    ordered by row, then block. From flat positions in a row-major copy: ``nonzero`` on a 2-D array
    costs several times more than on a flat one."""
    nb = dirty.shape[0]
    m = np.ascontiguousarray(dirty.T).reshape(-1)  # row after row, each ``nb`` blocks
    before = np.empty_like(m)  # the previous block of the same row is dirty
    before[0] = False
    before[1:] = m[:-1]
    before[::nb] = False
    after = np.empty_like(m)  # the next block of the same row is dirty
    after[-1] = False
    after[:-1] = m[1:]
    after[nb - 1 :: nb] = False
    k0 = (m & ~before).nonzero()[0]  # each run's first and last block, in the same (row, block) order
    k1 = (m & ~after).nonzero()[0]
    return k0 // nb, k0 % nb, k1 % nb + 1


def _touches_dirty(view: tuple[int, int, npt.NDArray[np.bool_]], pos: I64, a: I64, b: I64) -> I64:
    """Which windows ``[a[i], b[i])`` (non-empty, inside the view) of row positions ``pos[i]`` meet a
    dirty block of the view (as indices): only those can hold a blocked span of its table, since a
    clean block stays at or below the threshold throughout."""
    t0, bs, dirty = view
    b0, b1 = (a - t0) // bs, (b - 1 - t0) // bs
    hit = np.zeros(pos.shape[0], dtype=bool)
    for k in range(int((b1 - b0).max(initial=-1)) + 1):
        blk = np.minimum(b0 + k, b1)
        hit |= dirty[blk, pos]
    return np.flatnonzero(hit)


def free_starts_exact(
    specs: list[tuple[StepTable | None, I64]], rows: I64, lo: int, hi: int, d: int
) -> tuple[I64, I64, I64]:
    """``free_starts`` from every event of every row in [lo, hi + d)."""
    n = rows.shape[0]
    os, as_, bs = [], [], []
    for table, thr in specs:
        if table is None:
            continue
        o, a, b = table.blocked_spans(rows, lo, hi + d, thr)
        os.append(o)
        as_.append(a)
        bs.append(b)
    o = np.concatenate(os) if os else np.zeros(0, np.int64)
    a = np.concatenate(as_) if as_ else np.zeros(0, np.int64)
    b = np.concatenate(bs) if bs else np.zeros(0, np.int64)
    if o.shape[0] == 0:
        return np.arange(n, dtype=np.int64), np.full(n, lo, np.int64), np.full(n, hi, np.int64)
    fo, fx, fy = _stretches(o, a, b, n, lo, hi + d)  # beyond the range: no constraint known, so free
    y = np.minimum(fy - d, hi)
    ok = fx <= y
    return fo[ok], fx[ok], y[ok]


@dataclass(frozen=True)
class Coarse:
    """Free stretches seen from the block-maximum grids, before any event is read.

    Why the exact answer follows from it: a block whose peak is at or below the threshold is free
    throughout, so the *dirty* blocks (peak above it) cover every blocked instant. A free stretch of
    length >= d > 2W (W the largest block) contains whole clean blocks of every grid except at most one
    partial block per grid at each end, so it contains exactly one stretch free of dirty blocks,
    ``[cx, cy)``, and equals it extended to the end of the last blocked span in [cx - W, cx) and to the
    start of the first one in [cy, cy + W): only the events of those windows are read. Dirty blocks
    at the two ends of the range may be dirty only outside it: no span inside the window then means
    the stretch reaches ``lo`` (or runs past the range). Without reading them, [cx - W, cy + W) is a
    superset (``loose``)."""

    live: list[tuple[StepTable, I64]]
    rows: I64
    lo: int
    hi: int
    d: int
    w: int
    fo: I64  # row positions (into rows)
    cx: I64
    cy: I64
    views: list[tuple[int, int, npt.NDArray[np.bool_]]]  # per live table: ``dirty_blocks`` of [lo, hi + d)

    @classmethod
    def of(
        cls, specs: list[tuple[StepTable | None, I64]], rows: I64, lo: int, hi: int, d: int
    ) -> Coarse | None:
        """None when a grid cannot answer (the range leaves it, or ``d`` is not longer than two blocks)."""
        live = [(t, thr) for t, thr in specs if t is not None]
        end = hi + d
        n = rows.shape[0]
        if not live or n == 0:
            return None
        views = [t.dirty_blocks(rows, lo, end, thr) for t, thr in live]
        if any(v is None for v in views):
            return None
        w = max(v[1] for v in views if v is not None)
        if d <= 2 * w:
            return None
        os, as_, bs_ = [], [], []
        for v in views:
            assert v is not None
            t0, bs, dirty = v
            r0, b0, b1 = _dirty_runs(dirty)
            os.append(r0)
            as_.append(np.maximum(t0 + b0 * bs, lo))
            bs_.append(np.minimum(t0 + b1 * bs, end))
        fo, cx, cy = _stretches(np.concatenate(os), np.concatenate(as_), np.concatenate(bs_), n, lo, end)
        keep = cy - cx + 2 * w >= d  # can reach d with at most W of events on each side
        return cls(
            live, rows, lo, hi, d, w, fo[keep], cx[keep], cy[keep], [v for v in views if v is not None]
        )

    def only(self, mask: npt.NDArray[np.bool_]) -> Coarse:
        return replace(self, fo=self.fo[mask], cx=self.cx[mask], cy=self.cy[mask])

    def loose(self) -> tuple[I64, I64, I64]:
        """Per coarse stretch, an interval of starts containing the exact ones (empty where x > y),
        without reading events."""
        end = self.hi + self.d
        x = np.where(self.cx > self.lo, np.maximum(self.cx - self.w, self.lo), self.lo)
        ey = np.where(self.cy < end, self.cy + self.w, end)
        return self.fo, x, np.minimum(ey - self.d, self.hi)

    def exact(self) -> tuple[I64, I64, I64]:
        lo, w, end = self.lo, self.w, self.hi + self.d
        fo, cx, cy = self.fo, self.cx, self.cy
        ex, ey = cx.copy(), cy.copy()
        left = np.flatnonzero(cx > lo)
        right = np.flatnonzero(cy < end)
        if left.size:
            ex[left] = lo  # no blocked span in the window: the dirty block was dirty before lo
            a, b = np.maximum(cx[left] - w, lo), cx[left]
            for (table, thr), view in zip(self.live, self.views, strict=True):
                k = _touches_dirty(view, fo[left], a, b)
                if k.size == 0:
                    continue
                r = fo[left][k]
                q, _, qb = table.blocked_spans(self.rows[r], a[k], b[k], thr[r])
                np.maximum.at(ex, left[k][q], qb)
        if right.size:
            ey[right] = end  # no blocked span in the window: blocked only past the range
            a, b = cy[right], np.minimum(cy[right] + w, end)
            for (table, thr), view in zip(self.live, self.views, strict=True):
                k = _touches_dirty(view, fo[right], a, b)
                if k.size == 0:
                    continue
                r = fo[right][k]
                q, qa, _ = table.blocked_spans(self.rows[r], a[k], b[k], thr[r])
                np.minimum.at(ey, right[k][q], qa)
        y = np.minimum(ey - self.d, self.hi)
        ok = ex <= y
        return fo[ok], ex[ok], y[ok]


def group_coverage(group: I64, weight: I64, need: int, x: I64, y: I64) -> tuple[I64, I64, I64]:
    """Per group, the times at which its rows with ``t`` in ``[x, y]`` weigh ``need`` or more in total:
    (group, starts, ends) of half-open intervals, disjoint within a group, ordered by group."""
    if x.shape[0] == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    t = np.concatenate([x, y + 1])
    dl = np.concatenate([weight, -weight])
    g = np.concatenate([group, group])
    order = np.lexsort((dl > 0, t, g))  # per group in time order, removals before additions
    t, g, cs = t[order], g[order], np.cumsum(dl[order])  # each group's deltas sum to 0: restarts per group
    good = np.flatnonzero(cs >= need)  # never a group's last event (its sum is back to 0 < need)
    gs, ge, gg = t[good], t[good + 1], g[good]
    keep = gs < ge
    return gg[keep], gs[keep], ge[keep]


def union(starts: I64, ends: I64) -> tuple[I64, I64]:
    """Half-open intervals merged into disjoint sorted ones."""
    if starts.shape[0] == 0:
        return starts, ends
    order = np.argsort(starts, kind="stable")
    gs, ge = starts[order], np.maximum.accumulate(ends[order])
    new = np.flatnonzero(gs[1:] > ge[:-1])
    return gs[np.concatenate([[0], new + 1])], ge[np.concatenate([new, [gs.shape[0] - 1]])]


def coverage(group: I64, weight: I64, need: int, x: I64, y: I64) -> tuple[I64, I64]:
    """Times at which some group's rows with ``t`` in ``[x, y]`` weigh ``need`` or more in total:
    disjoint sorted intervals ``[starts, ends)``."""
    _, gs, ge = group_coverage(group, weight, need, x, y)
    return union(gs, ge)


def at_least(starts: I64, ends: I64, need: int) -> tuple[I64, I64]:
    """Where at least ``need`` of the half-open intervals overlap: disjoint sorted intervals."""
    if starts.shape[0] < need or need <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    t = np.concatenate([starts, ends])
    dl = np.concatenate([np.ones(starts.shape[0], np.int64), -np.ones(ends.shape[0], np.int64)])
    order = np.lexsort((dl, t))  # removals before additions at one instant: half-open intervals
    t, cs = t[order], np.cumsum(dl[order])
    good = np.flatnonzero(cs[:-1] >= need)
    gs, ge = t[good], t[good + 1]
    keep = gs < ge
    return union(gs[keep], ge[keep])


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
        key = gg * _SHIFT + (ge - lo)  # ordered by site, then time
        k = np.searchsorted(key, site[o] * _SHIFT + (x - lo), side="right")  # first cover ending after x
        kc = np.minimum(k, key.shape[0] - 1)
        hit: npt.NDArray[np.bool_] = (k < key.shape[0]) & (gg[kc] == site[o]) & (gs[kc] <= y)
        return hit

    o, x, y = free_starts(specs, rows, lo, hi, plan.min_duration, worth)
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
