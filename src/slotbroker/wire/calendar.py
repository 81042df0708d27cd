"""The calendar view's wire models: capacity, used and free per row in hour, day or week buckets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from slotbroker.domain.time import Bucket
from slotbroker.wire.display import HeatMap, Tabular


class CalendarRow(BaseModel):
    kind: str
    name: str
    resource_class: str
    capacity: int
    used: list[int] = Field(description="Peak concurrent usage in each bucket.")
    free: list[int]


class CalendarResponse(Tabular, BaseModel):
    resolution: Bucket
    bucket_s: int
    starts: list[datetime]
    rows: list[CalendarRow]

    def records(self) -> list[dict[str, Any]]:
        """One record per row and bucket (long form: easy to pivot or plot)."""
        return [
            {
                "kind": r.kind,
                "name": r.name,
                "resource_class": r.resource_class,
                "start": start,
                "capacity": r.capacity,
                "used": used,
                "free": free,
            }
            for r in self.rows
            for start, used, free in zip(self.starts, r.used, r.free, strict=False)
        ]

    def heatmap(self, resource_class: str, kind: str = "site") -> HeatMap:
        """Free ``resource_class`` per ``kind`` row and bucket, shown as a coloured grid in a notebook."""
        rows = [
            (r.name, r.capacity, r.free)
            for r in sorted(self.rows, key=lambda r: r.name)
            if r.resource_class == resource_class and r.kind == kind and r.capacity > 0
        ]
        return HeatMap(f"free {resource_class} per {kind}, by {self.resolution.value}", self.starts, rows)
