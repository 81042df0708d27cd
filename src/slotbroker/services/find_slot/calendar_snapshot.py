"""Build the engine's ``Snapshot`` from the rows ``uow.snapshot`` reads in a handful of bulk queries.

Only allocations that can still matter are loaded (see ``store.repositories.snapshot``); they go
straight into numpy columns rather than through one object per row.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from slotbroker.domain.inventory import capacity_of
from slotbroker.domain.providers import ProviderKind
from slotbroker.domain.vlans import VlanSet
from slotbroker.engine.snapshot import (
    NO_VLAN,
    AllocationTable,
    HostSnap,
    InventorySnap,
    LinkSnap,
    PortSnap,
    SiteSnap,
    Snapshot,
)
from slotbroker.store.unit_of_work import UnitOfWork


def load_snapshot(uow: UnitOfWork, *, now_s: int, since_s: int | None = None) -> Snapshot:
    since = now_s if since_s is None else since_s
    providers = {r.id: r for r in uow.snapshot.providers()}
    traits: dict[int, set[str]] = defaultdict(set)
    for pid, trait in uow.snapshot.traits():
        traits[pid].add(trait)
    aggregates: dict[int, set[str]] = defaultdict(set)
    for pid, agg in uow.snapshot.aggregates():
        aggregates[pid].add(agg)
    inventories: dict[int, dict[str, InventorySnap]] = defaultdict(dict)
    for row in uow.snapshot.inventories():
        inventories[row.provider_id][row.resource_class] = InventorySnap(
            capacity=capacity_of(row.total, row.reserved, row.allocation_ratio),
            min_unit=row.min_unit,
            max_unit=row.max_unit,
            step_size=row.step_size,
        )

    def location(pid: int) -> tuple[float, float] | None:
        p = providers[pid]
        return (p.lat, p.lon) if p.lat is not None and p.lon is not None else None

    def region_of(site_id: int) -> str | None:
        parent = providers[site_id].parent_id
        return providers[parent].name if parent is not None else None

    sites = tuple(
        SiteSnap(name=p.name, region=region_of(p.id), location=location(p.id))
        for p in sorted(providers.values(), key=lambda p: p.name)
        if p.kind == ProviderKind.SITE
    )
    hosts = []
    for p in sorted(providers.values(), key=lambda p: p.name):
        if p.kind != ProviderKind.HOST or p.parent_id is None:
            continue
        site = providers[p.parent_id]
        hosts.append(
            HostSnap(
                id=p.id,
                name=p.name,
                site=site.name,
                region=region_of(site.id),
                traits=frozenset(traits[p.id]),
                aggregates=frozenset(aggregates[p.id]),
                location=location(p.id) or location(site.id),
                inventories=inventories[p.id],
            )
        )
    links = tuple(
        LinkSnap(
            id=link.provider_id,
            name=providers[link.provider_id].name,
            site_a=providers[link.site_a_id].name,
            site_b=providers[link.site_b_id].name,
            capacity_gbps=_cap(inventories, link.provider_id, "BANDWIDTH_GBPS"),
            latency_ms=link.latency_ms,
        )
        for link in uow.snapshot.links()
    )
    ports = tuple(
        PortSnap(
            id=port.provider_id,
            site=providers[port.site_id].name,
            name=port.port_name,
            vlans=VlanSet.parse(port.vlans),
            capacity_gbps=_cap(inventories, port.provider_id, "BANDWIDTH_GBPS"),
        )
        for port in uow.snapshot.ports()
    )
    return Snapshot(
        hosts=tuple(hosts),
        sites=sites,
        links=links,
        ports=ports,
        allocations=load_allocations(uow, now_s=now_s, since_s=since),
    )


def _cap(inventories: dict[int, dict[str, InventorySnap]], pid: int, rc: str) -> int:
    inv = inventories[pid].get(rc)
    return inv.capacity if inv else 0


def load_allocations(uow: UnitOfWork, *, now_s: int, since_s: int) -> AllocationTable:
    rows = uow.snapshot.live_allocations(now_s=now_s, since_s=since_s)
    names: dict[str, int] = {}
    n = len(rows)
    cols = np.empty((6, n), dtype=np.int64)
    for i, (pid, rc, amount, start, end, tag) in enumerate(rows):
        cols[0, i] = pid
        cols[1, i] = names.setdefault(rc, len(names))
        cols[2, i] = amount
        cols[3, i] = start
        cols[4, i] = end
        cols[5, i] = NO_VLAN if tag is None else tag
    return AllocationTable(
        cols[0].copy(),
        cols[1].copy(),
        cols[2].copy(),
        cols[3].copy(),
        cols[4].copy(),
        cols[5].copy(),
        tuple(names),
    )
