"""Build the inventory views of ``wire/providers.py`` from store rows (the wire never sees the store)."""

from __future__ import annotations

from slotbroker.domain.inventory import capacity_of
from slotbroker.domain.providers import Location, ProviderKind
from slotbroker.store.models import FacilityPortRow, InventoryRow, LinkRow, ProviderRow
from slotbroker.wire.providers import FacilityPortView, InventoryView, LinkView, ProviderView


def inventory_view(row: InventoryRow) -> InventoryView:
    return InventoryView(
        total=row.total,
        reserved=row.reserved,
        min_unit=row.min_unit,
        max_unit=row.max_unit,
        step_size=row.step_size,
        allocation_ratio=row.allocation_ratio,
        capacity=capacity_of(row.total, row.reserved, row.allocation_ratio),
    )


def provider_view(row: ProviderRow, parent_uuid: str | None) -> ProviderView:
    return ProviderView(
        uuid=row.uuid,
        name=row.name,
        kind=ProviderKind(row.kind),
        parent_uuid=parent_uuid,
        location=Location(lat=row.lat, lon=row.lon) if row.lat is not None and row.lon is not None else None,
        generation=row.generation,
        traits=[t.trait for t in row.traits],
        aggregates=[a.aggregate for a in row.aggregates],
        inventories={i.resource_class: inventory_view(i) for i in row.inventories},
        attributes=dict(row.attributes or {}),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _total(row: ProviderRow, resource_class: str) -> int:
    return next((i.total for i in row.inventories if i.resource_class == resource_class), 0)


def link_view(link: LinkRow) -> LinkView:
    return LinkView(
        uuid=link.provider.uuid,
        name=link.provider.name,
        endpoints=(link.site_a.name, link.site_b.name),
        bandwidth_gbps=_total(link.provider, "BANDWIDTH_GBPS"),
        latency_ms=link.latency_ms,
        generation=link.provider.generation,
    )


def port_view(port: FacilityPortRow) -> FacilityPortView:
    return FacilityPortView(
        uuid=port.provider.uuid,
        name=port.port_name,
        site=port.site.name,
        device=port.device,
        vlans=port.vlans,
        vlan_count=_total(port.provider, "VLAN"),
        bandwidth_gbps=_total(port.provider, "BANDWIDTH_GBPS"),
        generation=port.provider.generation,
    )
