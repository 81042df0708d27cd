"""Stage 6: the selector. Chooses a site per component, packs instances onto hosts, routes links.

Depth-first over components (fewest candidate sites first), sites in the policy's order. Each step is
checked as soon as it can be: group constraints, then the joint packing of everything at that site
(cached per site and component set), then routes for links whose both ends are placed and for
facility ports, branching over a few candidate paths. A node budget bounds the work; hitting it is
reported as ``search_budget`` (the start is then treated as not fitting)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from slotbroker.domain.request import Policy
from slotbroker.engine.calendar import CalendarIndex
from slotbroker.engine.packing import INT64_MAX, Item, pack, usable_free
from slotbroker.engine.plan import CompPlan, Plan
from slotbroker.engine.routing import candidate_paths
from slotbroker.engine.stages.base import NEVER, Reason, Rejection
from slotbroker.engine.stages.host_fit import host_free_cols, instances_fit_cols, usable_cols
from slotbroker.engine.stages.prepared import prepared
from slotbroker.engine.stages.rankers import first_host, host_order, idle_gaps, site_order
from slotbroker.engine.stages.reach import next_possible
from slotbroker.engine.topology import Topology

I64 = npt.NDArray[np.int64]
READS = frozenset({"window.host_free", "link.bandwidth_calendar", "site.graph"})
BUDGET = 20_000
ROOM_CAP = 2**32  # instances a host is counted for in a site's room: far more than any request places


@dataclass(frozen=True)
class SiteHosts:
    """One component's candidate sites at one start (ascending) with each site's room (instances its
    hosts could take one by one) and its hosts' positions: those of ``hosts[first[k]:stop[k]]`` with
    ``fit > 0`` for ``sites[k]``. Arrays, not a dict of slices, filtered only when a site is asked
    for: a large inventory has hundreds of candidate sites per component and the search usually
    looks at one or two of them."""

    sites: I64
    room: I64
    hosts: I64
    first: I64
    stop: I64
    fit: I64  # per entry of ``hosts``: instances that host could hold by itself

    def __len__(self) -> int:
        return int(self.sites.shape[0])

    def __getitem__(self, site: int) -> I64:
        k = int(np.searchsorted(self.sites, site))
        if k == self.sites.shape[0] or int(self.sites[k]) != site:
            raise KeyError(site)
        a, b = int(self.first[k]), int(self.stop[k])
        got: I64 = self.hosts[a:b][self.fit[a:b] > 0]
        return got


@dataclass
class Choice:
    sites: dict[int, int]
    hosts: dict[int, list[int]]  # comp -> host rows, one per instance
    routes: dict[int, tuple[int, ...]]  # link request idx -> link rows
    port_routes: dict[int, tuple[int, ...]]  # port request idx -> link rows
    latency_ms: float = 0.0
    link_use: dict[int, int] = field(default_factory=dict)


class Selector:
    """``comp_sites``: per component, the sites it may take (those the site summaries pass), or None
    for every site with an eligible host (``site_summary.eligible_sites``).

    ``shortcut``: a site whose first route task no path can meet (its latency bound, or no path at
    all) is passed over without packing it. The search visits the same sites in the same order and
    counts the same nodes either way (such a route fails before trying a path, whatever the packing);
    only the failure counts differ, so a start that fails after a shortcut is searched again without
    it and reports what the full search reports."""

    def __init__(
        self,
        index: CalendarIndex,
        plan: Plan,
        s: int,
        e: int,
        comp_sites: dict[int, I64] | None,
        shortcut: bool = True,
    ) -> None:
        self.index, self.plan, self.s, self.e = index, plan, s, e
        self.shortcut = shortcut
        self.cut = False  # the shortcut passed over a site (kept when the search runs again)
        topo = self.topo = index.topo
        rows = plan.rows()
        self.rows = rows
        cols = host_free_cols(index, plan, rows, s, e)
        self.free = np.stack(cols, axis=1) if cols else np.zeros((rows.shape[0], 0), dtype=np.int64)
        prep = prepared(index, plan)
        self.cap = prep.cap if plan.classes else self.free
        n_sites = len(topo.sites)
        # per component: its candidate sites and, per site, the positions (into rows) of its hosts there
        self.local: dict[int, SiteHosts] = {}
        fits: dict[bytes, I64] = {}  # per demand vector: instances each row could hold (rows order)
        usable = usable_cols(cols)
        for c, (ps, _), (su, sb, stop) in zip(plan.comps, prep.by_site, prep.groups, strict=True):
            if ps.size == 0:
                self.local[c.idx] = SiteHosts(ps, ps, ps, ps, ps, ps)
                continue
            key = c.demand.tobytes() + c.count.to_bytes(8, "little")
            by_row = fits.get(key)
            if by_row is None:
                by_row = fits[key] = instances_fit_cols(usable, rows.shape[0], c)
            fit = by_row[ps]
            # room per site of ``su`` (the component's sites; ``ss`` runs through them in order): fit
            # is capped so the sum stays far from overflow (a huge host's room is capacity // demand)
            room = np.add.reduceat(np.minimum(fit, ROOM_CAP), sb)
            ok = room >= c.count
            if comp_sites is not None:
                passed = np.zeros(n_sites, dtype=bool)
                passed[comp_sites[c.idx]] = True
                ok &= passed[su]
            if ok.all():  # (usual for small components) no gathers
                self.local[c.idx] = SiteHosts(su, room, ps, sb, stop, fit)
                continue
            good = np.flatnonzero(ok)
            self.local[c.idx] = SiteHosts(su[good], room[good], ps, sb[good], stop[good], fit)
        self.link_free: list[int] | None = None
        self.use: dict[int, int] = defaultdict(int)
        self.sites: dict[int, int] = {}
        self.routes: dict[int, tuple[int, ...]] = {}
        self.port_routes: dict[int, tuple[int, ...]] = {}
        self.packs: dict[tuple[int, frozenset[int]], dict[int, list[int]] | None] = {}
        self.proven: set[tuple[int, frozenset[int]]] = set()  # packings known to exist, not yet made
        self.uncapped: bool | None = None  # no free amount large enough for ``usable_free`` to cap
        self.fails: Counter[tuple[Reason, str | None]] = Counter()
        self.nodes = 0

    def stuck(self) -> bool:
        """Some component has no candidate site (``run`` then rejects without searching)."""
        return any(not self.local[c.idx] for c in self.plan.comps)

    def run(self) -> Choice | Rejection:
        stuck = [c for c in self.plan.comps if not self.local[c.idx]]
        if stuck:
            return Rejection(
                Reason.INSUFFICIENT_CAPACITY,
                component=stuck[0].name,
                resource_class=self._short_class(stuck[0].idx),
                retry_at=max(host_level_bound(self.index, self.plan, c, self.s) for c in stuck),
            )
        order = sorted(
            (c.idx for c in self.plan.comps), key=lambda i: (len(self.local[i]), -self.plan.comps[i].count, i)
        )
        ok = self._assign(order, 0)
        if not ok and self.cut:
            self._reset()
            ok = self._assign(order, 0)
        if ok:
            hosts: dict[int, list[int]] = {}
            for site in set(self.sites.values()):
                at = frozenset(c for c, s in self.sites.items() if s == site)
                packed = self._pack(site, at)
                assert packed is not None
                for ci, local in packed.items():
                    hosts[ci] = [int(self.rows[i]) for i in local]
            lat = sum(float(self.topo.links[r].latency_ms) for p in self.routes.values() for r in p)
            return Choice(
                dict(self.sites), hosts, dict(self.routes), dict(self.port_routes), lat, dict(self.use)
            )
        if self.nodes > BUDGET:
            return Rejection(Reason.SEARCH_BUDGET, retry_at=None)
        (reason, name), _ = (
            self.fails.most_common(1)[0] if self.fails else ((Reason.GROUP_CONSTRAINT, None), 0)
        )
        return Rejection(reason, component=name, retry_at=None)

    def _reset(self) -> None:
        """Start the search again without the shortcut (the packings found stay valid)."""
        self.shortcut = False
        self.use.clear()
        self.sites.clear()
        self.routes.clear()
        self.port_routes.clear()
        self.fails.clear()
        self.nodes = 0

    def _short_class(self, comp: int) -> str | None:
        c = self.plan.comps[comp]
        p = self.plan.positions()[comp]
        if p.size == 0:
            return None
        short = (self.free[p] < c.demand).sum(axis=0)
        return self.plan.classes[int(np.argmax(short))] if self.plan.classes else None

    def _group_ok(self, c: int, site: int) -> bool:
        for g in self.plan.same_site:
            if c in g and any(self.sites.get(o, site) != site for o in g if o != c):
                return False
        for g in self.plan.different_sites:
            if c in g and any(self.sites.get(o) == site for o in g if o != c):
                return False
        return True

    def _fits(self, site: int, comps: frozenset[int]) -> bool:
        """Whether the components at ``site`` pack together. A component alone at one of its
        candidate sites always does: the site's room (instances its hosts take one by one) is at least
        its count, and one item's packing succeeds exactly then, whatever the host order (each host
        keeps taking instances while it has room). So it is not packed here, only if the final choice
        reads it (a lone component that a same-site peer joins later never is). The proof reads the
        hosts' free amounts as ``usable_free`` does; when that would cap an amount, it packs."""
        key = (site, comps)
        if key in self.proven:
            return True
        if key not in self.packs and len(comps) == 1 and self._uncapped():
            self.proven.add(key)
            return True
        return self._pack(site, comps) is not None

    def _uncapped(self) -> bool:
        """``usable_free`` caps no amount of any set of these hosts (every free amount is at most
        what it caps to over all of them, and fewer hosts cap higher)."""
        if self.uncapped is None:
            n = self.rows.shape[0]
            self.uncapped = self.free.size == 0 or int(self.free.max()) <= INT64_MAX // max(n, 1)
        return self.uncapped

    def _pack(self, site: int, comps: frozenset[int]) -> dict[int, list[int]] | None:
        key = (site, comps)
        if key not in self.packs:
            if len(comps) == 1:
                (only,) = comps
                local = self.local[only][site]  # ascending positions
                one = self._one(only, local)
                if one is not None:
                    self.packs[key] = one
                    return one
                items = [
                    Item(
                        only,
                        self.plan.comps[only].count,
                        self.plan.comps[only].demand,
                        np.ones(local.shape[0], dtype=bool),
                    )
                ]
            else:
                # their hosts together, ascending (a few dozen: a set, not np.unique's sort passes)
                both = {int(i) for c in comps for i in self.local[c][site].tolist()}
                local = np.array(sorted(both), dtype=np.int64)
                # eligible = statically eligible: a host outside self.local[c][site] but in ``local``
                # cannot hold an instance of c (no fit), so packing never puts one there either way
                elig = self.plan.eligible()
                items = [
                    Item(c, self.plan.comps[c].count, self.plan.comps[c].demand, elig[c][local])
                    for c in sorted(comps)
                ]
            gaps = None
            if self.plan.policy == Policy.LEAST_GAP:
                gaps = idle_gaps(self.index, self.plan, self.rows[local], self.s, self.e)
            order = host_order(self.plan.policy, self.free[local], self.cap[local], gaps)
            got = pack(items, self.free[local], order, self.plan.exact)
            self.packs[key] = None if got is None else {c: [int(local[i]) for i in v] for c, v in got.items()}
        return self.packs[key]

    def _one(self, comp: int, local: I64) -> dict[int, list[int]] | None:
        """What ``pack`` answers for one instance alone at a site, without packing: every host there
        takes it (the usual case: ``local`` holds the hosts that fit one), so ``pack`` picks the first
        host of the policy's order. None (not decided here) otherwise, and under ``least_gap``,
        whose order reads the hosts' bookings."""
        c = self.plan.comps[comp]
        if c.count != 1 or local.shape[0] == 0 or self.plan.policy == Policy.LEAST_GAP:
            return None
        free = self.free[local]
        if not (usable_free(free) >= c.demand).all():
            return None
        return {comp: [int(local[first_host(self.plan.policy, free, self.cap[local])])]}

    def _assign(self, order: list[int], k: int) -> bool:
        if k == len(order):
            return True
        self.nodes += 1
        if self.nodes > BUDGET:
            return False
        c = order[k]
        name = self.plan.comps[c].name
        here = self.local[c]
        cands = site_order(self.plan.policy, self.plan, self.topo, c, here.sites, here.room, self.sites)
        for site in cands:
            if not self._group_ok(c, site):
                self.fails[(Reason.GROUP_CONSTRAINT, name)] += 1
                continue
            self.sites[c] = site
            tasks = self._tasks(c, site)
            if self.shortcut and tasks and out_of_reach(self.topo, tasks[0][2], tasks[0][3], tasks[0][5]):
                self.cut = True  # ``_route`` would fail at once, whatever the packing
            elif not self._fits(site, frozenset(o for o, s in self.sites.items() if s == site)):
                self.fails[(Reason.INSUFFICIENT_CAPACITY, name)] += 1
            elif self._route(order, k, tasks, 0):
                return True
            del self.sites[c]
            if self.nodes > BUDGET:
                return False
        return False

    def _tasks(self, c: int, site: int) -> list[tuple[str, int, int, int, int, float | None]]:
        out: list[tuple[str, int, int, int, int, float | None]] = []
        for lk in self.plan.links:
            other = lk.b if lk.a == c else lk.a if lk.b == c else None
            if other is not None and other in self.sites:
                # routes run from a's site to b's site (path order as reported)
                sa = site if lk.a == c else self.sites[lk.a]
                sb = site if lk.b == c else self.sites[lk.b]
                out.append(("link", lk.idx, sa, sb, lk.gbps, lk.max_latency_ms))
        for p in self.plan.ports:
            if p.comp == c:
                out.append(("port", p.idx, site, p.site, p.gbps, None))
        return out

    def _residual(self, link: int) -> int:
        if self.link_free is None:
            all_links = np.arange(len(self.topo.links), dtype=np.int64)
            self.link_free = self.index.link_free(all_links, self.s, self.e).tolist()
        return self.link_free[link] - self.use[link]

    def _route(
        self, order: list[int], k: int, tasks: list[tuple[str, int, int, int, int, float | None]], j: int
    ) -> bool:
        if j == len(tasks):
            return self._assign(order, k + 1)
        kind, idx, src, dst, gbps, max_lat = tasks[j]
        paths = candidate_paths(self.topo, src, dst, gbps, self._residual, max_lat)
        if not paths:
            why = (
                Reason.NO_ROUTE
                if self.topo.latency[src, dst] == np.inf
                else (
                    Reason.LINK_LATENCY
                    if max_lat is not None and self.topo.latency[src, dst] > max_lat
                    else Reason.LINK_BANDWIDTH
                )
            )
            self.fails[(why, self.plan.comps[order[k]].name)] += 1
        target = self.routes if kind == "link" else self.port_routes
        for path, _lat in paths:
            self.nodes += 1
            for r in path:
                self.use[r] += gbps
            target[idx] = path
            if self._route(order, k, tasks, j + 1):
                return True
            del target[idx]
            for r in path:
                self.use[r] -= gbps
            if self.nodes > BUDGET:
                return False
        return False


def out_of_reach(topo: Topology, src: int, dst: int, max_latency_ms: float | None) -> bool:
    """No path joins the sites within the bound (``candidate_paths`` finds none, whatever the
    bandwidth): they are unconnected, or their lowest latency exceeds the bound by more than
    rounding (``candidate_paths`` sums the same links in another order)."""
    if src == dst:
        return False
    lat = float(topo.latency[src, dst])
    return lat == np.inf or (max_latency_ms is not None and lat > max_latency_ms + 1e-6)


def host_level_bound(index: CalendarIndex, plan: Plan, comp: CompPlan, s: int) -> int:
    """Host-level skip-ahead: a lower bound on the next start (> ``s``) at which ``comp`` could be
    placed, or ``NEVER``: the first start after ``s`` in the component's reach (``stages.reach``: some
    site has hosts that each hold an instance for the whole window at that start and could take
    ``count`` instances between them)."""
    if comp.hosts.size == 0 or s + 1 > plan.latest_start:
        return NEVER
    return next_possible(index, plan, comp, s + 1)
