"""``list_sites`` and the site calendar resource: capacity summaries built from two public calls.

The sites are ``GET /v1/providers?kind=site``; their capacity and what is free come from
``GET /v1/calendar`` (site rows aggregate their hosts). An agent sees per site and resource class the
capacity, what is free now and the least that is free over the horizon: enough to pick where to search.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field

from slotbroker.client import AsyncClient
from slotbroker.client.errors import NotFoundError
from slotbroker.wire.calendar import CalendarResponse

CALENDAR_DAYS = 7


class ClassCapacity(BaseModel):
    resource_class: str
    capacity: int
    free_now: int = Field(description="Free in the current hour.")
    min_free: int = Field(description="The least free at any time over the horizon.")


class SiteSummary(BaseModel):
    name: str
    uuid: str
    traits: list[str]
    resources: list[ClassCapacity]


class SitesView(BaseModel):
    start: datetime
    end: datetime
    sites: list[SiteSummary]


def this_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


async def list_sites(api: AsyncClient, hours: int) -> SitesView:
    start = this_hour()
    end = start + timedelta(hours=hours)
    sites = [p async for p in api.iter_providers(kind=["site"])]
    resolution = "hour" if hours <= 72 else "day"
    calendar = await api.calendar(start, end, resolution=resolution, kind=["site"])
    rows: dict[str, list[ClassCapacity]] = {}
    for row in calendar.rows:
        rows.setdefault(row.name, []).append(
            ClassCapacity(
                resource_class=row.resource_class,
                capacity=row.capacity,
                free_now=row.free[0] if row.free else row.capacity,
                min_free=min(row.free, default=row.capacity),
            )
        )
    summaries = [
        SiteSummary(name=s.name, uuid=s.uuid, traits=s.traits, resources=rows.get(s.name, [])) for s in sites
    ]
    return SitesView(start=start, end=end, sites=summaries)


def sites_summary(view: SitesView) -> str:
    if not view.sites:
        return "No sites."
    lines = [f"{len(view.sites)} site(s), free now / least free until {view.end.isoformat()}:"]
    for site in view.sites:
        classes = ", ".join(
            f"{r.resource_class} {r.free_now}/{r.capacity} (min {r.min_free})" for r in site.resources
        )
        lines.append(f"- {site.name}: {classes or 'no inventory'}")
    return "\n".join(lines)


async def site_calendar(api: AsyncClient, site: str) -> CalendarResponse:
    """The next days of a site and its hosts, by the hour (404 for an unknown site)."""
    found = [p async for p in api.iter_providers(kind=["site"], name=site)]
    if not found:
        raise NotFoundError(404, "not_found", f"no site named {site!r}")
    hosts = [p.name async for p in api.iter_providers(kind=["host"], parent=found[0].uuid)]
    start = this_hour()
    end = start + timedelta(days=CALENDAR_DAYS)
    return await api.calendar(start, end, resolution="hour", kind=["site", "host"], name=[site, *hosts])
