"""Read models the use cases return; the API serialises them as they are (JSON or YAML).

Plain pydantic with no store imports, so the Python client can share them without SQLAlchemy;
``services/presenters.py`` builds them from rows."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from slotbroker.domain.providers import Location, ProviderKind


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


class Health(BaseModel):
    """``GET /healthz``: the process is alive."""

    status: str


class Ready(BaseModel):
    """``GET /readyz``: the database is reachable and migrated to head."""

    status: str
    database: str
    migration: str | None
    calendar_generation: int
