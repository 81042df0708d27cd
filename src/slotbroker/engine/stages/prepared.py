"""The selector's time-free arrays for one plan: each candidate row's capacity per class and each
component's positions grouped by site. They depend on the plan and the topology only, so they are built
once per plan (cached in ``Plan.static``) and read at every start the search tries."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from slotbroker.engine.calendar import CalendarIndex
from slotbroker.engine.plan import Plan

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Prepared:
    """Time-free per-plan arrays the selector needs at every start (cached in ``Plan.static``)."""

    cap: I64  # (rows x classes) capacity
    by_site: list[tuple[I64, I64]]  # per component: its positions sorted by site, and their sites
    # per component: its distinct sites, and where each starts and stops in by_site
    groups: list[tuple[I64, I64, I64]]


def prepared(index: CalendarIndex, plan: Plan) -> Prepared:
    got: Prepared | None = plan.static.get("select")
    if got is None:
        topo = index.topo
        rows = plan.rows()
        cap = (
            np.stack(
                [topo.host_cap.get(c, np.zeros(len(topo.hosts), np.int64))[rows] for c in plan.classes],
                axis=1,
            )
            if plan.classes
            else np.zeros((rows.shape[0], 0), np.int64)
        )
        site_of = topo.host_site[rows]
        by_site = []
        groups = []
        for p in plan.positions():
            order = np.argsort(site_of[p], kind="stable")
            ss = site_of[p][order]
            by_site.append((p[order], ss))
            starts = np.flatnonzero(np.concatenate([[True], ss[1:] != ss[:-1]])) if ss.size else ss
            starts = starts.astype(np.int64)
            stops = np.append(starts[1:], ss.shape[0]).astype(np.int64) if ss.size else starts
            groups.append((ss[starts], starts, stops))
        got = Prepared(cap, by_site, groups)
        plan.static["select"] = got
    return got
