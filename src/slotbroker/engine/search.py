"""Find windows: try candidate starts in time order, skipping ahead, never stepping on a grid.

The earliest feasible start is always the range start or a time at which some relevant usage *drops*
(a booking ends): if a start ``w`` is feasible and nothing drops at ``w``, then ``w - 1`` sees no more
usage at any instant, so it is feasible too. Hence the candidates. When a start fails, the stage that
rejected it may also give a lower bound (e.g. the site summaries say no site can hold a component
before ``t``); the next candidate is the first drop at or after that bound.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from slotbroker.domain.request import Policy
from slotbroker.engine.calendar import CalendarIndex
from slotbroker.engine.plan import CompPlan, Plan
from slotbroker.engine.results import LinkRoute, PortAssignment, Window
from slotbroker.engine.stages.base import NEVER, Reason, Rejection
from slotbroker.engine.stages.host_fit import host_free
from slotbroker.engine.stages.port_check import check_ports
from slotbroker.engine.stages.prepared import prepared
from slotbroker.engine.stages.rankers import UTILISATION_POLICIES, host_order, window_score
from slotbroker.engine.stages.reach import admitted, groups_next_possible, known_next, next_possible
from slotbroker.engine.stages.select import Choice, Selector
from slotbroker.engine.stages.site_summary import candidate_sites
from slotbroker.engine.verify import holds, host_load

I64 = npt.NDArray[np.int64]
MAX_CANDIDATES = 20_000
FEW_HOSTS = 32  # components with at most this many eligible hosts get their reach up front
REACH_AFTER = 3  # rejected starts after which every component's reach bounds the next candidate


@dataclass
class Attempt:
    choice: Choice
    tags: dict[int, list[int]]
    rows: I64  # host rows the selector looked at (every statically eligible host)
    free: I64  # their free capacity over [s, s + min_duration), (rows x classes)


def try_start(index: CalendarIndex, plan: Plan, s: int, likely: bool = False) -> Attempt | Rejection:
    """Run the stack for one start: ports, site summaries, then host fit + selection.

    ``likely`` (the search's first start, or one in every component's reach): set the selector up
    over every eligible site first, and read the site summaries only if some component has no site
    with room. A site the summaries drop has too little room for the selector too (its hosts' free
    capacity sums to at most the site's bound; a site with an overbooked host has no bound), so
    the selector keeps the same sites either way, and the summaries pass whenever every component
    has a site with room: the selector's answer is then the plain order's. Otherwise the summaries'
    rejection is reported if they reject, else the selector's (the same search's)."""
    e = s + plan.min_duration
    tags, rej = check_ports(index, plan, s, e)
    if rej is not None:
        return rej
    if likely:
        sel = Selector(index, plan, s, e, None)
        if sel.stuck():  # the summaries may reject: theirs is the rejection then
            _, rej = candidate_sites(index, plan, s, e)
            if rej is not None:
                return rej
        got = sel.run()
        return got if isinstance(got, Rejection) else Attempt(got, tags, sel.rows, sel.free)
    sites, rej = candidate_sites(index, plan, s, e)
    if rej is not None:
        return rej
    sel = Selector(index, plan, s, e, sites)
    got = sel.run()
    return got if isinstance(got, Rejection) else Attempt(got, tags, sel.rows, sel.free)


def likely_start(plan: Plan, t: int, first: bool) -> bool:
    """Select before the site summaries at ``t`` (``try_start``'s ``likely``; the answer is the same
    either way, only the cost differs): at a start every component's reach admits, and at the
    search's first start. Most requests fit at their first start (every kind of the benchmark's mix
    at 1k hosts / 100k bookings and at 10k / 1M); one that does not pays the selector's setup once,
    as later starts select first only where the reach admits them."""
    return first or admitted(plan, t)


class Scanner:
    """Where usage relevant to a plan drops: the candidate start times."""

    def __init__(self, index: CalendarIndex, plan: Plan) -> None:
        self.index = index
        self.host_rows = plan.rows()
        self.classes = [c for c in plan.classes if c in index.host]
        self.links = np.arange(len(index.topo.links), dtype=np.int64) if (plan.links or plan.ports) else None
        self.ports = np.array(sorted({p.row for p in plan.ports if p.row >= 0}), dtype=np.int64)

    def first_drop_at_or_after(self, t: int) -> int | None:
        got = [self.index.host[c].next_decrease(self.host_rows, t - 1) for c in self.classes]
        if self.links is not None:
            got.append(self.index.link.next_decrease(self.links, t - 1))
        if self.ports.size:
            got.append(self.index.port_bw.next_decrease(self.ports, t - 1))
            got.append(self.index.port_vlans.next_decrease(self.ports, t - 1))
            got.append(self.index.next_tag_end(self.ports, t))
        times = [x for x in got if x is not None]
        return min(times) if times else None


def search_plan(
    index: CalendarIndex,
    plan: Plan,
    max_candidates: int = MAX_CANDIDATES,
    out_of_time: Callable[[], bool] | None = None,
) -> tuple[list[Window], int, list[Rejection], int | None]:
    """Windows (pairwise disjoint, in policy order), candidates tried, the rejections seen, and where
    the search stopped because ``out_of_time()`` said so (the first start it did not examine; None when
    it covered the whole range). ``out_of_time`` is asked before each candidate but the first."""
    windows: list[Window] = []
    rejections: list[Rejection] = []
    stopped: int | None = None
    if any(c.hosts.size == 0 for c in plan.comps):
        return windows, 0, rejections, None
    scans: list[Scanner] = []  # made when first asked: a request that fits at its first start never is

    def first_drop_at_or_after(t: int) -> int | None:
        if not scans:
            scans.append(Scanner(index, plan))
        return scans[0].first_drop_at_or_after(t)

    t, tried = plan.range_start, 0
    for c in plan.comps:
        if _likely_waits(index, plan, c):
            # jump straight to the first start the component's reach admits (usually the answer)
            bound = next_possible(index, plan, c, t)
            if bound > t:
                nxt = first_drop_at_or_after(bound) if bound <= plan.latest_start else None
                t = plan.latest_start + 1 if nxt is None else nxt
    short: dict[str | None, str | None] = {}  # component -> class named by its last rejection
    while t <= plan.latest_start and len(windows) < plan.limit and tried < max_candidates:
        if tried and out_of_time is not None and out_of_time():
            stopped = t
            break
        tried += 1
        skip = known_next(plan, t)
        if skip is not None:
            # a component's reach (computed after an earlier rejection) already rules ``t`` out
            name = plan.comps[skip[1]].name
            got: Attempt | Rejection = Rejection(
                Reason.INSUFFICIENT_CAPACITY, component=name, resource_class=short.get(name), retry_at=skip[0]
            )
        else:
            got = try_start(index, plan, t, likely=likely_start(plan, t, tried == 1))
        if isinstance(got, Attempt):
            w = _window(index, plan, t, got)
            windows.append(w)
            t = w.end
            continue
        rejections.append(got)
        if got.component is not None and got.resource_class is not None:
            short[got.component] = got.resource_class
        bound = max(t + 1, got.retry_at or 0)
        if len(rejections) >= REACH_AFTER and bound <= plan.latest_start:
            # many starts failed: prove whole ranges empty instead (each component's reach, cached per
            # chunk; every start before the largest first-possible start is infeasible)
            bound = max(bound, *(next_possible(index, plan, c, bound) for c in plan.comps))
            if bound <= plan.latest_start:
                bound = groups_next_possible(index, plan, bound)
        if bound >= NEVER or bound > plan.latest_start:
            break
        nxt = first_drop_at_or_after(bound)
        if nxt is None:
            break
        t = nxt
    if plan.policy in (Policy.BEST_FIT, Policy.SPREAD, Policy.LATENCY):
        windows.sort(key=lambda w: (-w.score, w.start))
    return windows, tried, rejections, stopped


def _likely_waits(index: CalendarIndex, plan: Plan, c: CompPlan) -> bool:
    """Worth computing the reach before the first start: a component that needs a whole host in
    some class (any booking of that class blocks it) or has only a few eligible hosts."""
    if c.hosts.size <= FEW_HOSTS:
        return True
    top: list[list[int | None]] | None = plan.static.get("max_cap")
    if top is None:  # time-free: per component and class, its eligible hosts' largest capacity
        caps = index.topo.host_cap
        top = plan.static["max_cap"] = [
            [int(caps[cn][k.hosts].max()) if cn in caps and k.hosts.size else None for cn in plan.classes]
            for k in plan.comps
        ]
    return any(
        dem > 0 and most is not None and dem >= most
        for dem, most in zip(c.demand.tolist(), top[c.idx], strict=True)
    )


def _stretch(index: CalendarIndex, plan: Plan, s: int, a: Attempt) -> int:
    """Longest end up to max_duration for which the same choice still holds (binary search)."""
    lo = s + plan.min_duration
    hi = min(s + plan.max_duration, plan.latest_end)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if holds(index, plan, a.choice, a.tags, s, mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _window(index: CalendarIndex, plan: Plan, s: int, a: Attempt) -> Window:
    topo = index.topo
    e = _stretch(index, plan, s, a) if plan.max_duration > plan.min_duration else s + plan.min_duration
    ch = a.choice
    load = host_load(plan, ch)
    free_all = a.free if e == s + plan.min_duration else host_free(index, plan, a.rows, s, e)
    at = np.searchsorted(a.rows, np.array(list(load), dtype=np.int64)).tolist()
    residual = {r: free_all[i] - need for (r, need), i in zip(load.items(), at, strict=True)}
    grants: dict[str, list[dict[str, int]]] = {}
    for c in plan.comps:
        if not c.elastic:
            continue
        out = []
        for h in ch.hosts[c.idx]:
            g: dict[str, int] = {}
            for rc, lo, hi in c.elastic:
                ci = plan.classes.index(rc)
                extra = int(max(0, min(hi - lo, int(residual[h][ci]))))
                residual[h][ci] -= extra
                g[rc] = lo + extra
            out.append(g)
        grants[c.name] = out
    score = window_score(plan.policy, plan, s, _utilisation(index, plan, residual, at), ch.latency_ms)
    routes = tuple(
        LinkRoute(
            plan.comps[lk.a].name,
            plan.comps[lk.b].name,
            tuple(topo.links[r].name for r in ch.routes.get(lk.idx, ())),
            sum(topo.links[r].latency_ms for r in ch.routes.get(lk.idx, ())),
        )
        for lk in plan.links
    )
    ports = tuple(
        PortAssignment(
            topo.ports[p.row].site,
            topo.ports[p.row].name,
            plan.comps[p.comp].name,
            tuple(a.tags.get(p.idx, [])),
            tuple(topo.links[r].name for r in ch.port_routes.get(p.idx, ())),
        )
        for p in plan.ports
    )
    return Window(
        start=s,
        end=e,
        placement={c.name: [topo.hosts[h].name for h in ch.hosts[c.idx]] for c in plan.comps},
        routes=routes,
        ports=ports,
        score=score,
        alternates=_alternates(index, plan, ch, residual, a.rows, free_all),
        grants=grants,
        sites={c.name: topo.sites[ch.sites[c.idx]].name for c in plan.comps},
    )


def _utilisation(index: CalendarIndex, plan: Plan, residual: dict[int, I64], at: list[int]) -> float:
    """Mean used fraction of the chosen hosts after placement (``at``: their positions in
    ``plan.rows()``, in ``residual``'s order); 0.0 for the policies whose score does not read it."""
    if plan.policy not in UTILISATION_POLICIES:
        return 0.0
    cap = prepared(index, plan).cap
    util = []
    for (_, left), i in zip(residual.items(), at, strict=True):
        c = cap[i]
        if (c > 0).any():
            util.append(float(((c - left) / np.maximum(c, 1))[c > 0].mean()))
    return float(np.mean(util)) if util else 0.0


def _alternates(
    index: CalendarIndex, plan: Plan, ch: Choice, residual: dict[int, I64], rows: I64, free_all: I64
) -> dict[str, list[str]]:
    """Hosts at the component's chosen site, not used by it, with room for one more instance over
    the whole window after this placement: a claim can fall back to them if its host is taken."""
    out: dict[str, list[str]] = {}
    if plan.alternates == 0:
        return out
    topo = index.topo
    prep = prepared(index, plan)
    # components at one site usually have the same eligible hosts there: their hosts' free room
    # after the placement and its order are the same, read once
    seen: dict[bytes, tuple[list[int], I64, list[int]]] = {}
    for (ps, ss), c in zip(prep.by_site, plan.comps, strict=True):
        lo, hi = np.searchsorted(ss, [ch.sites[c.idx], ch.sites[c.idx] + 1])
        p = ps[lo:hi]  # positions of c's eligible hosts at its site (ascending host row)
        key = p.tobytes()
        got = seen.get(key)
        if got is None:
            cand = rows[p].tolist()
            free = free_all[p]
            for i, r in enumerate(cand):
                if r in residual:
                    free[i] = residual[r]
            caps = prep.cap[p] if plan.classes else free
            got = seen[key] = (cand, free, host_order(plan.policy, free, caps))
        cand, free, order = got
        ok = ((free >= c.demand) | (c.demand == 0)).all(axis=1).tolist()
        # c's own hosts are among them: ordered with the others and left out of the answer (the
        # order is by key, then position, so the others' order does not depend on them)
        mine = set(ch.hosts[c.idx])
        names = [topo.hosts[cand[i]].name for i in order if ok[i] and cand[i] not in mine]
        out[c.name] = names[: plan.alternates]
    return out
