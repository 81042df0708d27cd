"""Does a concrete choice (hosts, routes, tags) hold over [start, end)? Used to stretch windows of
requests with a duration range; the tests check windows with their own, independent reference."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from slotbroker.engine.calendar import CalendarIndex
from slotbroker.engine.plan import Plan
from slotbroker.engine.stages.select import Choice


def host_load(plan: Plan, choice: Choice) -> dict[int, np.ndarray]:
    load: dict[int, np.ndarray] = defaultdict(lambda: np.zeros(len(plan.classes), dtype=np.int64))
    for c, hosts in choice.hosts.items():
        for h in hosts:
            load[h] = load[h] + plan.comps[c].demand
    return dict(load)


def holds(
    index: CalendarIndex, plan: Plan, choice: Choice, tags: dict[int, list[int]], s: int, e: int
) -> bool:
    load = host_load(plan, choice)
    rows = np.array(sorted(load), dtype=np.int64)
    for ci, cname in enumerate(plan.classes):
        need = np.array([load[int(r)][ci] for r in rows], dtype=np.int64)
        if ((index.host_free(cname, rows, s, e) < need) & (need > 0)).any():
            return False
    if choice.link_use:
        lr = np.array(sorted(choice.link_use), dtype=np.int64)
        need = np.array([choice.link_use[int(r)] for r in lr], dtype=np.int64)
        if ((index.link_free(lr, s, e) < need) & (need > 0)).any():  # as hosts: zero takes nothing
            return False
    bw: dict[int, int] = defaultdict(int)
    for p in plan.ports:
        bw[p.row] += p.gbps
        busy = index.tags_in_use(p.row, s, e)
        if busy & set(tags.get(p.idx, [])):
            return False
    for row, g in bw.items():
        if g and index.port_bw_free(row, s, e) < g:
            return False
    for row in {p.row for p in plan.ports}:
        port = index.topo.ports[row]
        mine = sum(len(tags.get(p.idx, [])) for p in plan.ports if p.row == row)
        busy = index.tags_in_use(row, s, e) & set(port.vlans)
        if len(port.vlans) - len(busy) - index.untagged_vlans(row, s, e) < mine:
            return False
    return True
