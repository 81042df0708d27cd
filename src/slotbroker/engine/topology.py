"""Static, time-free facts derived once from a snapshot: row numbers, capacities, node classes and the
site graph. Kept apart from the calendar so that allocation updates never rebuild them."""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from slotbroker.engine.snapshot import HostSnap, Snapshot

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Edge:
    """One direction of a link in the site graph."""

    link_row: int
    to_site: int
    latency_ms: float


INT64_MAX = np.iinfo(np.int64).max


def _site_sums(host_site: I64, cap: I64, n_sites: int) -> I64:
    """Per site, the sum of its hosts' capacities: exact integers (float sums round capacities near
    2**53 and could hide a fit), saturating at the int64 maximum instead of wrapping negative."""
    sums = [0] * n_sites
    for site, c in zip(host_site.tolist(), cap.tolist(), strict=True):
        sums[site] += c
    return np.array([min(x, INT64_MAX) for x in sums], dtype=np.int64)


class Topology:
    """Hosts, sites, links and ports by row number, capacities as arrays, and node classes."""

    def __init__(self, snap: Snapshot) -> None:
        self.snapshot = snap
        self.hosts = snap.hosts
        self.sites = snap.sites
        self.links = snap.links
        self.ports = snap.ports
        self.site_row = {s.name: i for i, s in enumerate(snap.sites)}
        self.host_row = {h.name: i for i, h in enumerate(snap.hosts)}
        self.link_row = {lk.name: i for i, lk in enumerate(snap.links)}
        self.port_row = {(p.site, p.name): i for i, p in enumerate(snap.ports)}
        self.host_site = np.array([self.site_row[h.site] for h in snap.hosts], dtype=np.int64)
        self.hosts_of_site: list[I64] = [
            np.nonzero(self.host_site == i)[0].astype(np.int64) for i in range(len(snap.sites))
        ]
        classes = sorted({c for h in snap.hosts for c in h.inventories})
        self.classes = classes
        self.host_cap: dict[str, I64] = {}
        self.site_cap: dict[str, I64] = {}
        for c in classes:
            cap = np.array([h.inventories[c].capacity if c in h.inventories else 0 for h in snap.hosts])
            self.host_cap[c] = cap.astype(np.int64)
            self.site_cap[c] = _site_sums(self.host_site, cap, len(snap.sites))
        self.link_cap = np.array([lk.capacity_gbps for lk in snap.links], dtype=np.int64)
        self.port_cap = np.array([p.capacity_gbps for p in snap.ports], dtype=np.int64)
        self.port_tag_count = np.array([len(p.vlans) for p in snap.ports], dtype=np.int64)
        # provider id -> (kind, row), as sorted arrays so a million allocations map in one call
        ids = [(h.id, 0, i) for i, h in enumerate(snap.hosts)]
        ids += [(lk.id, 1, i) for i, lk in enumerate(snap.links)]
        ids += [(p.id, 2, i) for i, p in enumerate(snap.ports)]
        ids.sort()
        self.id_sorted = np.array([x[0] for x in ids], dtype=np.int64)
        self.id_kind = np.array([x[1] for x in ids], dtype=np.int64)
        self.id_row = np.array([x[2] for x in ids], dtype=np.int64)
        # node classes (Nomad's computed class): hosts equal in everything static share one answer
        self.node_class = np.zeros(len(snap.hosts), dtype=np.int64)
        keys: dict[tuple[object, ...], int] = {}
        self.class_rep: list[HostSnap] = []
        for i, h in enumerate(snap.hosts):
            key = (h.site, h.region, h.traits, h.aggregates, h.location, tuple(sorted(h.inventories.items())))
            if key not in keys:
                keys[key] = len(keys)
                self.class_rep.append(h)
            self.node_class[i] = keys[key]
        self.n_node_classes = len(keys)
        self.adjacency: dict[int, list[Edge]] = defaultdict(list)
        for i, lk in enumerate(snap.links):
            a, b = self.site_row[lk.site_a], self.site_row[lk.site_b]
            self.adjacency[a].append(Edge(i, b, lk.latency_ms))
            self.adjacency[b].append(Edge(i, a, lk.latency_ms))
        for edges in self.adjacency.values():
            edges.sort(key=lambda x: (x.latency_ms, x.link_row))
        # lowest latency between every pair of sites (inf: unreachable), computed here once: a request
        # that links components asks for it from several sites, and a first-time Dijkstra per site cost
        # more than the rest of a search on a large inventory. A matrix, not dicts: 8 bytes a pair.
        n_sites = len(snap.sites)
        self.latency: npt.NDArray[np.float64] = np.full((n_sites, n_sites), np.inf)
        for a in range(n_sites):
            self.latency[a, a] = 0.0
        for a in self.adjacency:
            for b, d in self._dijkstra(a).items():
                self.latency[a, b] = d
        self.static_cache: dict[str, Any] = {}  # stage 1 answers per component signature

    def lookup(self, provider_ids: I64) -> tuple[I64, I64]:
        """(kind, row) of each provider id: kind 0 host, 1 link, 2 facility port."""
        pos = np.searchsorted(self.id_sorted, provider_ids)
        pc = np.minimum(pos, max(self.id_sorted.shape[0] - 1, 0))
        if self.id_sorted.shape[0] == 0 or not np.array_equal(self.id_sorted[pc], provider_ids):
            raise KeyError("allocation names an unknown provider id")
        return self.id_kind[pc], self.id_row[pc]

    def site_latency(self, a: int) -> npt.NDArray[np.float64]:
        """Lowest latency from site ``a`` to every site (inf where no path leads)."""
        row: npt.NDArray[np.float64] = self.latency[a]
        return row

    def _dijkstra(self, a: int) -> dict[int, float]:
        dist = {a: 0.0}
        heap = [(0.0, a)]
        while heap:
            d, u = heapq.heappop(heap)
            if d > dist.get(u, float("inf")):
                continue
            for e in self.adjacency.get(u, []):
                nd = d + e.latency_ms
                if nd < dist.get(e.to_site, float("inf")):
                    dist[e.to_site] = nd
                    heapq.heappush(heap, (nd, e.to_site))
        return dist
