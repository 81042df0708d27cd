"""Stage 3 (tier 1, as Oakestra filters clusters before workers): sites whose *summed* free capacity
over the window could hold all of a component's instances.

The site row of the calendar holds the sum of its hosts' usage, and peak(sum) <= sum(peaks), so
``capacity - peak(sum)`` is an upper bound of what the hosts have free: a site this stage drops could
never have fitted at host level. No false negatives, by construction."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from slotbroker.engine.calendar import CalendarIndex
from slotbroker.engine.plan import Plan
from slotbroker.engine.stages.base import NEVER, Reason, Rejection

I64 = npt.NDArray[np.int64]
READS = frozenset({"site.usage_sum", "site.capacity"})


def _shape(index: CalendarIndex, plan: Plan) -> tuple[list[I64], I64, list[I64]]:
    """Time-free, once per request shape: each component's eligible sites, all of them together (the
    only site rows the bound is read for) and where each component's are among those."""
    shape: tuple[list[I64], I64, list[I64]] | None = plan.static.get("comp_sites")
    if shape is None:
        topo = index.topo
        comp_sites = []
        for comp in plan.comps:
            mask = np.zeros(len(topo.sites), dtype=bool)
            mask[topo.host_site[comp.hosts]] = True
            comp_sites.append(np.flatnonzero(mask).astype(np.int64))
        used = np.unique(np.concatenate(comp_sites)) if comp_sites else np.zeros(0, np.int64)
        shape = plan.static["comp_sites"] = (comp_sites, used, [np.searchsorted(used, x) for x in comp_sites])
    return shape


def eligible_sites(index: CalendarIndex, plan: Plan) -> dict[int, I64]:
    """Per component, every site with an eligible host (ascending): no bound read."""
    return dict(enumerate(_shape(index, plan)[0]))


def candidate_sites(
    index: CalendarIndex, plan: Plan, s: int, e: int
) -> tuple[dict[int, I64], Rejection | None]:
    """Per component, the site rows that pass the bound (ascending), or a rejection with a retry
    time before which no eligible site can pass it."""
    topo = index.topo
    out: dict[int, I64] = {}
    comp_sites, used, at = _shape(index, plan)
    # (classes x used sites); with no classes (components that only anchor a link or port) it has no
    # rows and every site passes, since nothing is needed
    bound = (
        np.stack([index.site_free_bound(c, used, s, e) for c in plan.classes])
        if plan.classes
        else np.zeros((0, used.shape[0]), dtype=np.int64)
    )
    for comp in plan.comps:
        sites = comp_sites[comp.idx]
        if sites.size == 0:
            return {}, Rejection(Reason.INSUFFICIENT_CAPACITY, component=comp.name, retry_at=NEVER)
        need = comp.demand * comp.count
        mine = bound[:, at[comp.idx]]
        ok = (mine >= need[:, None]).all(axis=0)
        if ok.any():
            out[comp.idx] = sites[ok]
            continue
        worst = int(np.argmax((mine < need[:, None]).sum(axis=1)))
        retry = NEVER
        for site in sites:
            t = s + 1
            for ci, cname in enumerate(plan.classes):
                if need[ci] == 0 or cname not in index.site or int(site) in index.unbounded.get(cname, ()):
                    continue
                cap = int(topo.site_cap[cname][site])
                got = index.site[cname].earliest_fit(
                    int(site), t, e - s, cap - int(need[ci]), plan.latest_start
                )
                t = NEVER if got is None else max(t, got)
                if t >= retry:
                    break
            retry = min(retry, t)
        return {}, Rejection(
            Reason.INSUFFICIENT_CAPACITY,
            component=comp.name,
            resource_class=plan.classes[worst],
            retry_at=retry,
        )
    return out, None
