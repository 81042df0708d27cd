"""A validated ``SlotRequest`` compiled against the topology into plain integers and row numbers.

Everything the search loop touches per candidate start is precomputed here once: demand vectors over
the request's classes, statically eligible hosts and sites per component, group constraints as index
sets, port rows. Explanations build *relaxed* plans with ``dataclasses.replace``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from slotbroker.domain.request import Component, GroupKind, Policy, SlotRequest
from slotbroker.engine.calendar import CalendarIndex
from slotbroker.engine.stages.base import Reason
from slotbroker.engine.stages.static_filter import static_eligibility
from slotbroker.engine.topology import Topology

I64 = npt.NDArray[np.int64]
EXACT_LIMIT = 16  # requests with at most this many instances are packed exactly (backtracking)
LAST_INSTANT = 253_402_300_799  # 9999-12-31T23:59:59Z: no answer names a later time (no datetime can)


@dataclass(frozen=True)
class CompPlan:
    idx: int
    name: str
    count: int
    demand: I64  # per-instance minimum, one entry per Plan.classes (0 where not needed)
    elastic: tuple[tuple[str, int, int], ...]  # (class, min, max)
    hosts: I64  # statically eligible host rows
    static_rejects: tuple[tuple[Reason, int], ...]  # hosts removed per reason, for explanations


@dataclass(frozen=True)
class LinkPlan:
    idx: int
    a: int
    b: int
    gbps: int
    max_latency_ms: float | None


@dataclass(frozen=True)
class PortPlan:
    idx: int
    row: int  # -1: unknown port
    site: int
    comp: int
    tags: tuple[int, ...] | None  # specific tags, or None for a count
    count: int
    gbps: int
    label: str


@dataclass(frozen=True)
class Plan:
    classes: tuple[str, ...]
    comps: tuple[CompPlan, ...]
    same_site: tuple[frozenset[int], ...]
    different_sites: tuple[frozenset[int], ...]
    spread: tuple[frozenset[int], ...]
    links: tuple[LinkPlan, ...]
    ports: tuple[PortPlan, ...]
    policy: Policy
    range_start: int
    latest_start: int
    latest_end: int
    min_duration: int
    max_duration: int
    limit: int
    alternates: int
    exact: bool = field(default=True)
    # arrays derived once per plan (reaches, covers); not copied by ``replace``
    cache: dict[object, Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    # time-free arrays (rows, positions, masks, capacities), shared by every plan ``compile_plan``
    # makes with the same classes and components' eligible hosts (``shared_static``); a plan made by
    # ``replace`` starts with its own
    static: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def instances(self) -> int:
        return sum(c.count for c in self.comps)

    def rows(self) -> I64:
        """Every statically eligible host row of any component (sorted, unique)."""
        got = self.static.get("rows")
        if got is None:
            if not self.comps:
                got = np.zeros(0, np.int64)
            elif all(c.hosts is self.comps[0].hosts for c in self.comps):
                got = self.comps[0].hosts  # already sorted and unique (static eligibility)
            else:
                hosts = [c.hosts for c in self.comps]
                size = 1 + max((int(h[-1]) for h in hosts if h.size), default=-1)
                mask = np.zeros(size, dtype=bool)
                for h in hosts:
                    mask[h] = True
                got = np.flatnonzero(mask).astype(np.int64)
            self.static["rows"] = got
        return got

    def positions(self) -> list[I64]:
        """Per component: positions of its eligible hosts in ``rows()``."""
        got = self.static.get("pos")
        if got is None:
            rows = self.rows()
            at = np.zeros(int(rows[-1]) + 1 if rows.size else 0, dtype=np.int64)
            at[rows] = np.arange(rows.shape[0], dtype=np.int64)
            got = [at[c.hosts] for c in self.comps]
            self.static["pos"] = got
        return got

    def eligible(self) -> list[npt.NDArray[np.bool_]]:
        """Per component: which of ``rows()`` are statically eligible for it (a mask)."""
        got = self.static.get("elig")
        if got is None:
            n = self.rows().shape[0]
            got = []
            for p in self.positions():
                m = np.zeros(n, dtype=bool)
                m[p] = True
                got.append(m)
            self.static["elig"] = got
        return got


def demand_of(comp: Component, classes: tuple[str, ...]) -> I64:
    need = comp.minimum()
    return np.array([need.get(c, 0) for c in classes], dtype=np.int64)


def compile_plan(req: SlotRequest, index: CalendarIndex) -> Plan:
    topo = index.topo
    classes = tuple(sorted({rc for c in req.components for rc in c.minimum()}))
    comps = []
    for i, c in enumerate(req.components):
        hosts, rejects = static_eligibility(topo, c)
        elastic = tuple((rc, r.min, r.max) for rc, r in sorted(c.elastic.items()))
        comps.append(CompPlan(i, c.name, c.count, demand_of(c, classes), elastic, hosts, rejects))
    pos = {c.name: i for i, c in enumerate(req.components)}

    def groups(kind: GroupKind) -> tuple[frozenset[int], ...]:
        return tuple(frozenset(pos[n] for n in g.components) for g in req.groups if g.kind == kind)

    links = tuple(
        LinkPlan(i, pos[lk.a], pos[lk.b], lk.bandwidth_gbps, lk.max_latency_ms)
        for i, lk in enumerate(req.links)
    )
    ports = []
    for i, p in enumerate(req.facility_ports):
        row = topo.port_row.get((p.site, p.port), -1)
        site = topo.site_row.get(p.site, -1)
        tags = tuple(p.vlans) if p.vlans is not None else None
        ports.append(
            PortPlan(
                i, row, site, pos[p.component], tags, p.tag_count, p.bandwidth_gbps, f"{p.site}/{p.port}"
            )
        )
    plan = Plan(
        classes=classes,
        comps=tuple(comps),
        same_site=groups(GroupKind.SAME_SITE),
        different_sites=groups(GroupKind.DIFFERENT_SITES),
        spread=groups(GroupKind.SPREAD),
        links=links,
        ports=tuple(ports),
        policy=req.policy,
        range_start=req.range_start_s,
        latest_start=min(req.latest_start_s, LAST_INSTANT - req.min_duration_s),
        latest_end=min(req.latest_end_s, LAST_INSTANT),
        min_duration=req.min_duration_s,
        max_duration=req.max_duration_s,
        limit=req.limit,
        alternates=req.alternates,
        exact=req.instances <= EXACT_LIMIT,
    )
    object.__setattr__(plan, "static", shared_static(topo, classes, plan.comps))
    return plan


SHARED_PLANS = 256  # distinct request shapes whose static arrays are kept per topology


def shared_static(topo: Topology, classes: tuple[str, ...], comps: tuple[CompPlan, ...]) -> dict[str, Any]:
    """The static-array dict of plans asking for ``classes`` with these components' eligible hosts.
    The host arrays come from the static filter's own cache (one array per component signature), so
    their identity names them; the entry keeps them alive and checks them, so an id is never reused
    while it is a key."""
    store: dict[tuple[object, ...], tuple[tuple[I64, ...], dict[str, Any]]]
    store = topo.static_cache.setdefault("plans", {})
    key = (classes, tuple(id(c.hosts) for c in comps))
    got = store.get(key)
    if got is not None and all(a is c.hosts for a, c in zip(got[0], comps, strict=True)):
        return got[1]
    if len(store) >= SHARED_PLANS:
        store.clear()
    fresh: dict[str, Any] = {}
    store[key] = (tuple(c.hosts for c in comps), fresh)
    return fresh
