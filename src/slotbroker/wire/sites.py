"""``GET /v1/sites``: what each site has and what of it is free now, at a glance."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from slotbroker.wire.display import Tabular


class ClassSummary(BaseModel):
    resource_class: str = Field(examples=["GPU_A30"])
    capacity: int = Field(description="Sum over the site's hosts of (total - reserved) x allocation ratio.")
    free: int = Field(description="Not allocated at `at` (open offers hold capacity too).")
    largest_free: int = Field(description="The most one host of the site has free at `at`.")
    hosts: int = Field(description="Hosts of the site that stock the class.")


class SiteSummary(BaseModel):
    name: str
    region: str | None = None
    lat: float | None = None
    lon: float | None = None
    hosts: int
    links: int = Field(description="Links with an end at this site.")
    ports: int = Field(description="Facility ports of the site.")
    classes: list[ClassSummary]


class SiteList(Tabular, BaseModel):
    at: datetime = Field(description="The instant `free` describes (now).")
    items: list[SiteSummary]

    def records(self) -> list[dict[str, Any]]:
        """One record per site and class."""
        return [
            {
                "site": site.name,
                "region": site.region,
                "resource_class": c.resource_class,
                "capacity": c.capacity,
                "free": c.free,
                "largest_free": c.largest_free,
                "hosts": c.hosts,
            }
            for site in self.items
            for c in site.classes
        ]
