"""Paths between sites over the link graph: direct or multi-hop, within a latency bound.

The selector branches over a few candidate paths per demand (lowest latency first), so a demand that
cannot take its favourite path because an earlier demand of the same request used it can fall back to
another: exact whenever no more than ``MAX_PATHS`` paths qualify (and the depth-first walk, edges
cheapest first, stops after ``MAX_EXPLORED`` qualifying paths)."""

from __future__ import annotations

from collections.abc import Callable

from slotbroker.engine.topology import Topology

MAX_PATHS = 4
MAX_HOPS = 6
MAX_EXPLORED = 16
INF = float("inf")


def candidate_paths(
    topo: Topology,
    src: int,
    dst: int,
    gbps: int,
    residual: Callable[[int], int],
    max_latency_ms: float | None,
) -> list[tuple[tuple[int, ...], float]]:
    """Simple paths (link rows, latency) from ``src`` to ``dst`` with ``residual(link) >= gbps`` on
    every hop (any link when ``gbps`` is 0), latency within the bound, best first; at most
    ``MAX_PATHS``."""
    if src == dst:
        return [((), 0.0)]
    to_dst = topo.site_latency(dst).tolist()
    if to_dst[src] == INF:
        return []
    bound = float("inf") if max_latency_ms is None else max_latency_ms
    found: list[tuple[tuple[int, ...], float]] = []
    seen = {src}
    path: list[int] = []

    def dfs(site: int, lat: float) -> None:
        if len(found) >= MAX_EXPLORED:
            return
        for e in topo.adjacency.get(site, []):
            nl = lat + e.latency_ms
            rest = to_dst[e.to_site]
            # a zero amount takes nothing: it crosses even a link whose bookings exceed its capacity
            short = gbps > 0 and residual(e.link_row) < gbps
            if e.to_site in seen or rest == INF or nl + rest > bound + 1e-9 or short:
                continue
            path.append(e.link_row)
            if e.to_site == dst:
                found.append((tuple(path), nl))
            elif len(path) < MAX_HOPS:
                seen.add(e.to_site)
                dfs(e.to_site, nl)
                seen.discard(e.to_site)
            path.pop()

    dfs(src, 0.0)
    found.sort(key=lambda p: (p[1], len(p[0]), p[0]))
    return found[:MAX_PATHS]
