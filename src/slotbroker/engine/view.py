"""The calendar view: capacity, used and free per host, site, link and facility port in hour, day or
week buckets. ``used`` is the PEAK concurrent usage inside the bucket (not the sum of the bookings that
touch it): two 1-core bookings one after the other in the same hour use 1 core, not 2."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from slotbroker.domain.time import BUCKET_S, Bucket
from slotbroker.engine.calendar import BANDWIDTH, VLAN, CalendarIndex
from slotbroker.engine.steps import StepTable

I64 = npt.NDArray[np.int64]


MAX_BUCKETS = 10_000


@dataclass(frozen=True)
class ViewRow:
    kind: str  # host | site | link | facility_port
    name: str
    resource_class: str
    capacity: int
    used: tuple[int, ...]  # peak per bucket
    free: tuple[int, ...]


@dataclass(frozen=True)
class CalendarView:
    bucket_s: int
    starts: tuple[int, ...]  # bucket start times; the last bucket ends at starts[-1] + bucket_s
    rows: tuple[ViewRow, ...]


def _rows(
    kind: str, names: list[str], cls: str, cap: I64, table: StepTable | None, edges: I64
) -> list[ViewRow]:
    n = len(names)
    idx = np.arange(n, dtype=np.int64)
    used = table.bucket_peaks(idx, edges) if table is not None else np.zeros((n, edges.size - 1), np.int64)
    return [
        ViewRow(
            kind,
            names[i],
            cls,
            int(cap[i]),
            tuple(int(x) for x in used[i]),
            tuple(int(cap[i] - x) for x in used[i]),
        )
        for i in range(n)
    ]


def calendar_view(
    index: CalendarIndex,
    start: int,
    end: int,
    bucket: Bucket = Bucket.DAY,
    kinds: frozenset[str] = frozenset({"host", "site", "link", "facility_port"}),
) -> CalendarView:
    """Buckets aligned to ``start``; every class with capacity on hosts, plus link bandwidth and port
    bandwidth and VLAN counts."""
    step = BUCKET_S[bucket]
    nb = -(-(end - start) // step)
    if nb <= 0 or nb > MAX_BUCKETS:
        raise ValueError(f"the view must cover 1 to {MAX_BUCKETS} buckets, got {nb}")
    edges = start + step * np.arange(nb + 1, dtype=np.int64)
    topo = index.topo
    rows: list[ViewRow] = []
    for cls in topo.classes:
        if "host" in kinds:
            have = topo.host_cap[cls] > 0
            sub = [
                ViewRow(r.kind, r.name, r.resource_class, r.capacity, r.used, r.free)
                for r, ok in zip(
                    _rows(
                        "host",
                        [h.name for h in topo.hosts],
                        cls,
                        topo.host_cap[cls],
                        index.host.get(cls),
                        edges,
                    ),
                    have,
                    strict=True,
                )
                if ok
            ]
            rows += sub
        if "site" in kinds:
            rows += _rows(
                "site", [s.name for s in topo.sites], cls, topo.site_cap[cls], index.site.get(cls), edges
            )
    if "link" in kinds and topo.links:
        rows += _rows("link", [lk.name for lk in topo.links], BANDWIDTH, topo.link_cap, index.link, edges)
    if "facility_port" in kinds and topo.ports:
        names = [f"{p.site}/{p.name}" for p in topo.ports]
        rows += _rows("facility_port", names, BANDWIDTH, topo.port_cap, index.port_bw, edges)
        rows += _rows("facility_port", names, VLAN, topo.port_tag_count, index.port_vlans, edges)
    return CalendarView(step, tuple(int(x) for x in edges[:-1]), tuple(rows))
