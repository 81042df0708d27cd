"""Read models the use cases return; the API serialises them as they are (JSON or YAML)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from slotbroker.domain.providers import Location, ProviderKind
from slotbroker.store.models import FacilityPortRow, InventoryRow, LinkRow, ProviderRow


class InventoryView(BaseModel):
    total: int
    reserved: int
    min_unit: int
    max_unit: int
    step_size: int
    allocation_ratio: float
    capacity: int = Field(description="(total - reserved) x allocation_ratio, floored.")


class ProviderView(BaseModel):
    model_config = ConfigDict(title="Provider")

    uuid: str
    name: str
    kind: ProviderKind
    parent_uuid: str | None
    location: Location | None
    generation: int = Field(description="Send it back with updates; a stale one is refused with 409.")
    traits: list[str]
    aggregates: list[str]
    inventories: dict[str, InventoryView]
    created_at: datetime
    updated_at: datetime


class ProviderList(BaseModel):
    items: list[ProviderView]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page; null at the end.")


class InventoriesView(BaseModel):
    provider_uuid: str
    generation: int
    inventories: dict[str, InventoryView]


class NamesView(BaseModel):
    provider_uuid: str
    generation: int
    names: list[str]


class ResourceClassView(BaseModel):
    name: str
    kind: str = Field(description="standard, device or custom")
    description: str


class TraitView(BaseModel):
    name: str
    custom: bool


class AggregateView(BaseModel):
    name: str
    members: int


class LinkView(BaseModel):
    uuid: str
    name: str
    endpoints: tuple[str, str]
    bandwidth_gbps: int
    latency_ms: float
    generation: int


class FacilityPortView(BaseModel):
    uuid: str
    name: str
    site: str
    device: str | None
    vlans: str
    vlan_count: int
    bandwidth_gbps: int
    generation: int


class ImportReport(BaseModel):
    created: int
    updated: int
    unchanged: int
    deleted: int
    calendar_generation: int


def inventory_view(row: InventoryRow) -> InventoryView:
    from slotbroker.domain.inventory import capacity_of

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
