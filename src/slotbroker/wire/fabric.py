"""FABRIC reports-API wire models (plain pydantic, shared by the server and the Python client)."""

from __future__ import annotations

from datetime import datetime
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


class FabricWindow(BaseModel):
    start: datetime
    end: datetime
    placement: dict[str, list[str]] = Field(description="slotbroker extension: component -> hosts")


class FabricFindSlotResponse(BaseModel):
    windows: list[FabricWindow]
    total: int
    search_start: datetime
    search_end: datetime
    duration_hours: int


class FabricUsage(BaseModel):
    name: str
    capacity: dict[str, int]
    allocated: dict[str, int]
    available: dict[str, int]


class FabricInterval(BaseModel):
    start: datetime
    end: datetime
    sites: list[FabricUsage]
    hosts: list[FabricUsage]


class FabricCalendar(BaseModel):
    start_time: datetime
    end_time: datetime
    interval: str
    data: list[FabricInterval]
