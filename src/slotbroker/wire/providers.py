"""The inventory's wire models: providers, inventories, traits, aggregates, resource classes, links and
facility ports, as commands the API reads and views it returns (JSON or YAML).

Commands are validated here so every error names its field; ``services/inventory/presenters.py``
builds the views from rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from slotbroker.domain.inventory import InventoryField
from slotbroker.domain.network import FacilityPortSpec, LinkSpec
from slotbroker.domain.providers import (
    MAX_ATTRIBUTES,
    AggregateName,
    Attributes,
    Location,
    ProviderKind,
    ProviderName,
    TraitName,
)
from slotbroker.domain.strict import Int, Number
from slotbroker.wire.display import Tabular


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
    attributes: dict[str, str] = Field(
        default_factory=dict, description="Operator facts provisioners read (e.g. ssh_host); strings."
    )
    created_at: datetime
    updated_at: datetime


class ProviderList(Tabular, BaseModel):
    items: list[ProviderView]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page; null at the end.")

    def records(self) -> list[dict[str, Any]]:
        return [
            {
                "uuid": p.uuid,
                "name": p.name,
                "kind": p.kind.value,
                "parent": p.parent_uuid,
                "capacity": ", ".join(f"{rc}={inv.capacity}" for rc, inv in p.inventories.items()),
                "traits": ", ".join(p.traits),
            }
            for p in self.items
        ]


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


# -- commands -----------------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateProvider(_Strict):
    name: ProviderName
    kind: ProviderKind = Field(
        description="region, site, host or device (links and ports have their own API)"
    )
    parent_uuid: UUID | None = None
    uuid: UUID | None = Field(None, description="Optional; generated when absent.")
    location: Location | None = None
    traits: list[TraitName] = Field(default_factory=list)
    aggregates: list[AggregateName] = Field(default_factory=list)
    inventories: dict[str, InventoryField] = Field(default_factory=dict)
    attributes: Attributes | None = Field(
        None, max_length=MAX_ATTRIBUTES, description="Operator facts provisioners read (e.g. ssh_host)."
    )


class UpdateProvider(_Strict):
    generation: Int = Field(ge=0, description="The generation you read; stale -> 409 concurrent_update.")
    name: ProviderName | None = None
    parent_uuid: UUID | None = None
    location: Location | None = None
    attributes: Attributes | None = Field(
        None, max_length=MAX_ATTRIBUTES, description="Replaces all attributes; null or {} clears them."
    )


class SetInventories(_Strict):
    generation: Int = Field(ge=0)
    inventories: dict[str, InventoryField]


class SetInventory(_Strict):
    generation: Int = Field(ge=0)
    total: Int = Field(ge=1, le=2**53)
    reserved: Int = Field(0, ge=0, le=2**53)
    min_unit: Int = Field(1, ge=1, le=2**53)
    max_unit: Int | None = Field(None, ge=1, le=2**53)
    step_size: Int = Field(1, ge=1, le=2**53)
    allocation_ratio: Number = Field(1.0, gt=0, le=1000)


class SetNames(_Strict):
    """Replace a provider's traits or aggregates."""

    generation: Int = Field(ge=0)
    names: list[str] = Field(max_length=1000)


class CreateResourceClass(_Strict):
    name: str = Field(pattern=r"^CUSTOM_[A-Z0-9][A-Z0-9_]{0,247}$", examples=["CUSTOM_SMARTNIC"])
    description: str = Field("", max_length=1000)


class CreateLink(LinkSpec):
    pass


class UpdateLink(_Strict):
    generation: Int = Field(ge=0)
    bandwidth_gbps: Int | None = Field(None, ge=1, le=1_000_000)
    latency_ms: Number | None = Field(None, ge=0, le=100_000)


class CreateFacilityPort(FacilityPortSpec):
    pass


class UpdateFacilityPort(_Strict):
    generation: Int = Field(ge=0)
    device: str | None = Field(None, max_length=200)
    vlans: str | None = None
    bandwidth_gbps: Int | None = Field(None, ge=1, le=1_000_000)
