"""The calendar view's wire models: capacity, used and free per row in hour, day or week buckets."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from slotbroker.domain.time import Bucket


class CalendarRow(BaseModel):
    kind: str
    name: str
    resource_class: str
    capacity: int
    used: list[int] = Field(description="Peak concurrent usage in each bucket.")
    free: list[int]


class CalendarResponse(BaseModel):
    resolution: Bucket
    bucket_s: int
    starts: list[datetime]
    rows: list[CalendarRow]
