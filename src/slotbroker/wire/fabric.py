"""FABRIC reports-API wire models (plain pydantic, shared by the server and the Python client)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from slotbroker.domain.strict import Int


class FabricResource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["compute", "link", "facility_port"]
    site: str | None = Field(None, max_length=200)
    cores: Int | None = Field(None, ge=0, le=100_000)
    ram: Int | None = Field(None, ge=0, le=1_000_000, description="GB")
    disk: Int | None = Field(None, ge=0, le=10_000_000, description="GB")
    components: dict[str, Int] | None = Field(
        None, description="Model name -> count, e.g. {'GPU_RTX6000': 1}"
    )
    site_a: str | None = Field(None, max_length=200)
    site_b: str | None = Field(None, max_length=200)
    bandwidth: Int | None = Field(None, ge=0, le=1_000_000, description="Gbps")
    name: str | None = Field(None, max_length=200)
    vlans: Int | None = Field(None, ge=0, le=4094)


class FabricFindSlotRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: str = Field(
        description="ISO 8601 start of the search range", examples=["2026-12-01T00:00:00+00:00"]
    )
    end: str = Field(description="ISO 8601 end of the search range", examples=["2026-12-08T00:00:00+00:00"])
    duration: Int = Field(ge=1, le=24 * 90, description="Hours")
    resources: list[FabricResource] = Field(min_length=1, max_length=64)
    max_results: Int = Field(1, ge=1, le=50)
    use_live_data: bool | None = Field(
        None, description="FABlib's orchestrator flag; accepted and ignored (our data is always live)"
    )


class FabricWindow(BaseModel):
    start: str = Field(description="FABRIC's format: ISO 8601 in the offset of the request's start")
    end: str
    placement: dict[str, list[str]] = Field(description="slotbroker extension: compute resource -> hosts")


class FabricFindSlotResponse(BaseModel):
    windows: list[FabricWindow]
    total: int
    search_start: str
    search_end: str
    duration_hours: int
    messages: list[str] | None = Field(
        None, description="slotbroker extension: why nothing can fit (an unknown site, link or port)"
    )


class FabricAmount(BaseModel):
    capacity: int
    allocated: int
    available: int


class FabricHost(BaseModel):
    name: str
    site: str
    cores_capacity: int
    cores_allocated: int
    cores_available: int
    ram_capacity: int
    ram_allocated: int
    ram_available: int
    disk_capacity: int
    disk_allocated: int
    disk_available: int
    components: dict[str, FabricAmount]


class FabricSite(BaseModel):
    name: str
    cores_capacity: int
    cores_allocated: int
    cores_available: int
    ram_capacity: int
    ram_allocated: int
    ram_available: int
    disk_capacity: int
    disk_allocated: int
    disk_available: int
    components: dict[str, FabricAmount]


class FabricLink(BaseModel):
    name: str
    site_a: str
    site_b: str
    layer: str | None = None
    bandwidth_capacity: int
    bandwidth_allocated: int
    bandwidth_available: int


class FabricFacilityPort(BaseModel):
    name: str
    site: str
    device_name: str | None = None
    local_name: str | None = None
    vlan_range: str
    total_vlans: int
    vlans_allocated: list[str]
    vlans_available: str


class FabricSlot(BaseModel):
    start: str
    end: str
    hosts: list[FabricHost]
    sites: list[FabricSite]
    links: list[FabricLink]
    facility_ports: list[FabricFacilityPort]


class FabricCalendar(BaseModel):
    data: list[FabricSlot]
    interval: str
    query_start: str
    query_end: str
    total: int


class OrchestratorFindSlot(BaseModel):
    """The FABRIC orchestrator's envelope around a find-slot answer (``POST /resources/find-slot``)."""

    data: list[FabricFindSlotResponse]
    size: int
    type: str = "resources.find_slot"


class OrchestratorCalendar(BaseModel):
    """The FABRIC orchestrator's envelope around a calendar (``GET /resources/calendar``)."""

    data: list[FabricCalendar]
    size: int
    type: str = "resources.calendar"
