"""Why nothing fits: typed blockers, each with the earliest start if that one constraint were relaxed.

Static blockers (no host has the traits, aggregate, class...) are read off stage 1's counts. Otherwise
each constraint is relaxed in turn - one component's demand for one class, one link, one facility
port, one group - and the search re-run for a single window; a relaxation that yields a window names a
blocker. Bounded: at most ``MAX_RELAXATIONS`` re-runs with a smaller candidate budget each.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np

from slotbroker.engine.calendar import CalendarIndex
from slotbroker.engine.plan import LAST_INSTANT, Plan
from slotbroker.engine.results import Blocker, Explanation
from slotbroker.engine.search import search_plan
from slotbroker.engine.stages.base import Reason, Rejection

MAX_RELAXATIONS = 24
RELAXED_CANDIDATES = 2_000
MAX_LOOKAHEAD_S = 90 * 86400


def _first_start(index: CalendarIndex, plan: Plan) -> int | None:
    wins, _, _, _ = search_plan(index, replace(plan, limit=1, alternates=0), RELAXED_CANDIDATES)
    return wins[0].start if wins else None


def _blocking_class(index: CalendarIndex, plan: Plan, comp: int) -> str | None:
    """The class of ``comp`` that the most hosts can never hold one instance of (no inventory, or the
    amount breaks its unit rules or exceeds its capacity): what to name when nothing could ever fit."""
    c = plan.comps[comp]
    worst: tuple[int, str] | None = None
    for ci, cls in enumerate(plan.classes):
        amount = int(c.demand[ci])
        if amount <= 0:
            continue
        refusing = 0
        for h in index.topo.hosts:
            inv = h.inventories.get(cls)
            if inv is None or inv.capacity <= 0 or not inv.admits(amount):
                refusing += 1
        if worst is None or refusing > worst[0]:
            worst = (refusing, cls)
    return worst[1] if worst is not None and worst[0] > 0 else None


def _static(index: CalendarIndex, plan: Plan) -> list[Blocker]:
    out = []
    for c in plan.comps:
        if c.hosts.size == 0:
            counts = ", ".join(f"{r.value}: {n}" for r, n in c.static_rejects) or "no hosts"
            top = max(c.static_rejects, key=lambda x: x[1])[0] if c.static_rejects else Reason.NO_INVENTORY
            cls = (
                _blocking_class(index, plan, c.idx)
                if top in (Reason.NO_INVENTORY, Reason.UNIT_RULE)
                else None
            )
            out.append(
                Blocker(
                    top,
                    f"no host can ever hold component {c.name!r}"
                    + (f": {cls} is missing or too small everywhere" if cls else "")
                    + f" (hosts removed by {counts})",
                    component=c.name,
                    resource_class=cls,
                )
            )
    for p in plan.ports:
        if p.row < 0:
            out.append(
                Blocker(Reason.UNKNOWN_PORT, f"facility port {p.label!r} does not exist", port=p.label)
            )
    return out


def _names(plan: Plan, group: frozenset[int]) -> str:
    return ", ".join(sorted(plan.comps[i].name for i in group))


def _relaxations(plan: Plan) -> list[tuple[Blocker, Plan]]:
    out: list[tuple[Blocker, Plan]] = []
    for c in plan.comps:
        for ci, cls in enumerate(plan.classes):
            if c.demand[ci] == 0:
                continue
            demand = c.demand.copy()
            demand[ci] = 0
            comps = tuple(replace(x, demand=demand) if x.idx == c.idx else x for x in plan.comps)
            b = Blocker(
                Reason.INSUFFICIENT_CAPACITY,
                f"{cls} for component {c.name!r}",
                component=c.name,
                resource_class=cls,
            )
            out.append((b, replace(plan, comps=comps)))
    for lk in plan.links:
        label = f"{plan.comps[lk.a].name}-{plan.comps[lk.b].name}"
        b = Blocker(Reason.LINK_BANDWIDTH, f"link {label} ({lk.gbps} Gbps)", link=label)
        out.append((b, replace(plan, links=tuple(x for x in plan.links if x.idx != lk.idx))))
    for p in plan.ports:
        b = Blocker(
            Reason.VLAN_UNAVAILABLE,
            f"facility port {p.label}",
            port=p.label,
            component=plan.comps[p.comp].name,
        )
        out.append((b, replace(plan, ports=tuple(x for x in plan.ports if x.idx != p.idx))))
    for g in plan.same_site:
        b = Blocker(Reason.GROUP_CONSTRAINT, f"same_site over {_names(plan, g)}")
        out.append((b, replace(plan, same_site=tuple(x for x in plan.same_site if x is not g))))
    for g in plan.different_sites:
        b = Blocker(Reason.GROUP_CONSTRAINT, f"different_sites over {_names(plan, g)}")
        out.append((b, replace(plan, different_sites=tuple(x for x in plan.different_sites if x is not g))))
    return out


def explain_failure(index: CalendarIndex, plan: Plan, rejections: list[Rejection]) -> Explanation:
    blockers = _static(index, plan)
    if blockers:
        return Explanation(tuple(blockers), None)
    for b, relaxed in _relaxations(plan)[:MAX_RELAXATIONS]:
        t = _first_start(index, relaxed)
        if t is not None:
            blockers.append(replace(b, earliest_if_relaxed=t))
    if not blockers:
        for c in plan.comps:
            alone = replace(
                plan,
                comps=(replace(c, idx=0),),
                links=(),
                ports=(),
                same_site=(),
                different_sites=(),
                spread=(),
            )
            if _first_start(index, alone) is None:
                short = Counter(r.resource_class for r in rejections if r.component == c.name)
                cls = short.most_common(1)[0][0] if short else None
                blockers.append(
                    Blocker(
                        Reason.INSUFFICIENT_CAPACITY,
                        f"component {c.name!r} does not fit anywhere in the range even alone",
                        component=c.name,
                        resource_class=cls,
                    )
                )
    if not blockers and rejections:
        (reason, comp, cls, link, port), _ = Counter(
            (r.reason, r.component, r.resource_class, r.link, r.port) for r in rejections
        ).most_common(1)[0]
        blockers.append(
            Blocker(
                reason,
                "the combination does not fit; no single relaxation helps",
                component=comp,
                resource_class=cls,
                link=link,
                port=port,
            )
        )
    span = min(MAX_LOOKAHEAD_S, max(plan.latest_end - plan.range_start, plan.max_duration))
    later = replace(
        plan,
        latest_start=min(plan.latest_start + span, LAST_INSTANT - plan.min_duration),
        latest_end=min(plan.latest_end + span, LAST_INSTANT),
    )
    after = _first_start(index, later)
    return Explanation(tuple(blockers), after)


__all__ = ["explain_failure", "np"]
