"""Calendar feeds: a read-only iCalendar URL of a project's leases, for calendar apps to subscribe to."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class CreateFeed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=200, examples=["my phone"], description="To tell your feeds apart.")


class FeedView(BaseModel):
    id: int
    name: str
    project: str
    prefix: str = Field(description="The first characters of the feed's secret, to recognise its URL.")
    created_at: datetime
    revoked_at: datetime | None = None


class CreatedFeed(FeedView):
    url: str = Field(
        description="Subscribe to this (path on this server; prepend its address). It carries the feed's "
        "secret, shown only now: whoever has the URL can read the project's leases until it is revoked."
    )
