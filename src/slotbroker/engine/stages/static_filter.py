"""Stage 1: time-free feasibility (traits, aggregates, site/host mapping, distance, inventory rules).

Decided once per *node class* (hosts identical in everything static) and cached per topology, as
Nomad's computed node classes do: a testbed has hundreds of identical hosts, so this is cheap."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import numpy.typing as npt

from slotbroker.domain.request import Component
from slotbroker.engine.snapshot import HostSnap
from slotbroker.engine.stages.base import Reason
from slotbroker.engine.topology import Topology

I64 = npt.NDArray[np.int64]
READS = frozenset({"host.traits", "host.aggregates", "host.site", "host.location", "host.inventories"})
EARTH_KM = 6371.0088


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle (haversine) distance."""
    la1, lo1, la2, lo2 = (math.radians(x) for x in (*a, *b))
    h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    return 2 * EARTH_KM * math.asin(min(1.0, math.sqrt(h)))


def class_reason(topo: Topology, h: HostSnap, c: Component) -> Reason | None:
    """The first reason host (class representative) ``h`` cannot take one instance of ``c``."""
    if c.site is not None and h.site != c.site:
        return Reason.WRONG_SITE
    if not set(c.required_traits) <= h.traits:
        return Reason.MISSING_TRAIT
    if h.traits & set(c.forbidden_traits):
        return Reason.FORBIDDEN_TRAIT
    if c.member_of and not (h.aggregates & set(c.member_of)):
        return Reason.NOT_IN_AGGREGATE
    if c.near is not None:
        loc = h.location
        if loc is None:
            loc = topo.sites[topo.site_row[h.site]].location
        if loc is None or distance_km(loc, (c.near.lat, c.near.lon)) > c.near.radius_km:
            return Reason.TOO_FAR
    for rc, amount in c.minimum().items():
        inv = h.inventories.get(rc)
        if inv is None or inv.capacity <= 0:
            return Reason.NO_INVENTORY
        if not inv.admits(amount):
            return Reason.UNIT_RULE
    return None


def static_eligibility(topo: Topology, c: Component) -> tuple[I64, tuple[tuple[Reason, int], ...]]:
    """Eligible host rows for one instance of ``c`` and how many hosts each reason removed."""
    key = c.model_dump_json(
        include={
            "site",
            "host",
            "required_traits",
            "forbidden_traits",
            "member_of",
            "near",
            "resources",
            "elastic",
        }
    )
    cache = topo.static_cache
    if key in cache:
        hit: tuple[I64, tuple[tuple[Reason, int], ...]] = cache[key]
        return hit
    reasons = [class_reason(topo, rep, c) for rep in topo.class_rep]
    ok_class = np.array([r is None for r in reasons], dtype=bool)
    ok = ok_class[topo.node_class] if len(topo.hosts) else np.zeros(0, dtype=bool)
    counts: Counter[Reason] = Counter()
    for cls_idx, r in enumerate(reasons):
        if r is not None:
            counts[r] += int((topo.node_class == cls_idx).sum())
    if c.host is not None:
        row = topo.host_row.get(c.host, -1)
        keep = np.zeros_like(ok)
        if row >= 0:
            keep[row] = ok[row]
        counts[Reason.WRONG_HOST] += int(ok.sum() - keep.sum())
        ok = keep
    result = (np.nonzero(ok)[0].astype(np.int64), tuple(sorted(counts.items())))
    if len(cache) > 4096:
        cache.clear()
    cache[key] = result
    return result
