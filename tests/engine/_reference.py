"""A deliberately simple reference: fixed fine grid, brute force over every site, host and path choice.

Slow and obviously correct (for small inputs); the engine is checked against it."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator

from slotbroker.domain.request import GroupKind, SlotRequest
from slotbroker.engine import Snapshot, Window

Placement = dict[str, list[str]]


def usage(snap: Snapshot, provider: int, cls: str, t: int) -> int:
    return sum(
        a.amount
        for a in snap.allocations.rows()
        if a.provider_id == provider and a.resource_class == cls and a.start_s <= t < a.end_s
    )


def tags_used(snap: Snapshot, port: int, s: int, e: int) -> set[int]:
    return {
        a.vlan_tag
        for a in snap.allocations.rows()
        if a.provider_id == port
        and a.resource_class == "VLAN"
        and a.vlan_tag is not None
        and a.start_s < e
        and a.end_s > s
    }


def instants(snap: Snapshot, s: int, e: int) -> list[int]:
    """Every instant in [s, e) where usage can differ: s and event times inside."""
    al = snap.allocations
    ev = {int(x) for x in al.start} | {int(x) for x in al.end}
    return sorted({s} | {t for t in ev if s < t < e})


def statically_ok(snap: Snapshot, req: SlotRequest, comp_name: str, host_name: str) -> bool:
    c = next(x for x in req.components if x.name == comp_name)
    h = next(x for x in snap.hosts if x.name == host_name)
    if c.site is not None and h.site != c.site:
        return False
    if c.host is not None and h.name != c.host:
        return False
    if not set(c.required_traits) <= h.traits or h.traits & set(c.forbidden_traits):
        return False
    if c.member_of and not h.aggregates & set(c.member_of):
        return False
    for rc, amt in c.minimum().items():
        inv = h.inventories.get(rc)
        if inv is None or inv.capacity <= 0 or not inv.admits(amt):
            return False
    return True


def simple_paths(snap: Snapshot, a: str, b: str) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []

    def go(site: str, seen: set[str], path: list[str]) -> None:
        if site == b:
            out.append(tuple(path))
            return
        for lk in snap.links:
            for x, y in ((lk.site_a, lk.site_b), (lk.site_b, lk.site_a)):
                if x == site and y not in seen:
                    go(y, seen | {y}, [*path, lk.name])

    go(a, {a}, [])
    return out


def window_ok(
    snap: Snapshot,
    req: SlotRequest,
    s: int,
    e: int,
    placement: Placement,
    routes: list[tuple[str, ...]],
    port_tags: list[tuple[int, ...]],
) -> bool:
    """Everything (hosts, links, ports, VLAN tags) fits at every instant of [s, e). A zero amount
    takes nothing, so it fits even where existing bookings already exceed a capacity (worlds here may be
    overbooked; the broker's never are)."""
    hosts = {h.name: h for h in snap.hosts}
    links = {lk.name: lk for lk in snap.links}
    load: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for c in req.components:
        for hn in placement[c.name]:
            if not statically_ok(snap, req, c.name, hn):
                return False
            for rc, amt in c.minimum().items():
                if amt > 0:
                    load[hn][rc] += amt
    bw: dict[str, int] = defaultdict(int)
    for lk, path in zip(req.links, routes[: len(req.links)], strict=True):
        for name in path:
            if lk.bandwidth_gbps > 0:
                bw[name] += lk.bandwidth_gbps
    for p, path in zip(req.facility_ports, routes[len(req.links) :], strict=True):
        for name in path:
            if p.bandwidth_gbps > 0:
                bw[name] += p.bandwidth_gbps
    pbw: dict[int, int] = defaultdict(int)
    ptags: dict[int, list[int]] = defaultdict(list)
    for p, tags in zip(req.facility_ports, port_tags, strict=True):
        port = next(x for x in snap.ports if x.site == p.site and x.name == p.port)
        if p.bandwidth_gbps > 0:
            pbw[port.id] += p.bandwidth_gbps
        ptags[port.id] += list(tags)
        if len(tags) != p.tag_count or any(t not in port.vlans for t in tags):
            return False
        if p.vlans is not None and sorted(tags) != sorted(p.vlans):
            return False
    for pid, taglist in ptags.items():
        if len(set(taglist)) != len(taglist) or set(taglist) & tags_used(snap, pid, s, e):
            return False
    for t in instants(snap, s, e):
        for hn, need in load.items():
            for rc, amt in need.items():
                inv = hosts[hn].inventories[rc]
                if usage(snap, hosts[hn].id, rc, t) + amt > inv.capacity:
                    return False
        for name, g in bw.items():
            if usage(snap, links[name].id, "BANDWIDTH_GBPS", t) + g > links[name].capacity_gbps:
                return False
        for pid, g in pbw.items():
            port = next(x for x in snap.ports if x.id == pid)
            if usage(snap, pid, "BANDWIDTH_GBPS", t) + g > port.capacity_gbps:
                return False
    return True


def check_window(snap: Snapshot, req: SlotRequest, w: Window) -> bool:
    routes = [r.links for r in w.routes] + [p.links for p in w.ports]
    # route endpoints must be the sites the components landed on
    site_of = {h.name: h.site for h in snap.hosts}
    for c in req.components:
        if len(w.placement[c.name]) != c.count or len({site_of[h] for h in w.placement[c.name]}) != 1:
            return False
    csite = {c: site_of[hs[0]] for c, hs in w.placement.items()}
    for lk, r in zip(req.links, w.routes, strict=True):
        if not _connects(snap, r.links, csite[lk.a], csite[lk.b]):
            return False
        if lk.max_latency_ms is not None and r.latency_ms > lk.max_latency_ms + 1e-9:
            return False
    for p, pa in zip(req.facility_ports, w.ports, strict=True):
        if not _connects(snap, pa.links, csite[p.component], p.site):
            return False
    if not _groups_ok(req, csite):
        return False
    return window_ok(snap, req, w.start, w.end, w.placement, routes, [p.vlans for p in w.ports])


def _connects(snap: Snapshot, path: tuple[str, ...], a: str, b: str) -> bool:
    return path in simple_paths(snap, a, b) if a != b else path == ()


def _groups_ok(req: SlotRequest, csite: dict[str, str]) -> bool:
    for g in req.groups:
        sites = [csite[n] for n in g.components]
        if g.kind == GroupKind.SAME_SITE and len(set(sites)) > 1:
            return False
        if g.kind == GroupKind.DIFFERENT_SITES and len(set(sites)) != len(sites):
            return False
    return True


def _placements(snap: Snapshot, req: SlotRequest) -> Iterator[Placement]:
    names = [h.name for h in snap.hosts]
    per_comp = []
    for c in req.components:
        opts = [
            hs
            for hs in itertools.product(names, repeat=c.count)
            if len({next(h.site for h in snap.hosts if h.name == x) for x in hs}) == 1
            and all(statically_ok(snap, req, c.name, x) for x in hs)
        ]
        per_comp.append(opts)
    for combo in itertools.product(*per_comp):
        yield {c.name: list(hs) for c, hs in zip(req.components, combo, strict=True)}


def feasible_at(snap: Snapshot, req: SlotRequest, s: int, e: int) -> bool:
    site_of = {h.name: h.site for h in snap.hosts}
    for pl in _placements(snap, req):
        csite = {c: site_of[hs[0]] for c, hs in pl.items()}
        if not _groups_ok(req, csite):
            continue
        path_opts = []
        for lk in req.links:
            a, b = csite[lk.a], csite[lk.b]
            ps = [()] if a == b else simple_paths(snap, a, b)
            lat = {x.name: x.latency_ms for x in snap.links}
            if lk.max_latency_ms is not None:
                ps = [p for p in ps if sum(lat[n] for n in p) <= lk.max_latency_ms + 1e-9]
            path_opts.append(ps)
        for p in req.facility_ports:
            a = csite[p.component]
            path_opts.append([()] if a == p.site else simple_paths(snap, a, p.site))
        # ports on the same port need distinct tags: take consecutive free tags per port
        tags = _distinct_tags(snap, req, s, e)
        if tags is None:
            continue
        for routes in itertools.product(*path_opts):
            if window_ok(snap, req, s, e, pl, list(routes), tags):
                return True
    return False


def _distinct_tags(snap: Snapshot, req: SlotRequest, s: int, e: int) -> list[tuple[int, ...]] | None:
    taken: dict[int, set[int]] = defaultdict(set)
    out = []
    for p in req.facility_ports:
        port = next(x for x in snap.ports if x.site == p.site and x.name == p.port)
        busy = tags_used(snap, port.id, s, e) | taken[port.id]
        if p.vlans is not None:
            chosen = tuple(p.vlans)
        else:
            chosen = tuple([t for t in port.vlans if t not in busy][: p.tag_count])
            if len(chosen) < p.tag_count:
                return None
        taken[port.id] |= set(chosen)
        out.append(chosen)
    return out


def earliest(snap: Snapshot, req: SlotRequest, grid: int) -> int | None:
    """Earliest feasible start on the fixed grid (all event times must be multiples of ``grid``)."""
    t = req.range_start_s
    while t <= req.latest_start_s:
        if feasible_at(snap, req, t, t + req.min_duration_s):
            return t
        t += grid
    return None
