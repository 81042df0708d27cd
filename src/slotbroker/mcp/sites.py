"""``list_sites`` (``GET /v1/sites``) and the site calendar resource (``GET /v1/calendar``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from slotbroker.client import AsyncClient
from slotbroker.client.errors import NotFoundError
from slotbroker.wire.calendar import CalendarResponse
from slotbroker.wire.sites import SiteList

CALENDAR_DAYS = 7


def sites_summary(view: SiteList) -> str:
    if not view.items:
        return "No sites."
    lines = [f"{len(view.items)} site(s); per class free now / capacity (most free on one host):"]
    for site in view.items:
        classes = ", ".join(
            f"{c.resource_class} {c.free}/{c.capacity} ({c.largest_free})" for c in site.classes
        )
        lines.append(f"- {site.name}: {classes or 'no inventory'}")
    lines.append(
        "find_slot searches when it fits over time; slotbroker://sites/{site}/calendar shows the week."
    )
    return "\n".join(lines)


async def site_calendar(api: AsyncClient, site: str) -> CalendarResponse:
    """The next days of a site and its hosts, by the hour (404 for an unknown site)."""
    found = [p async for p in api.iter_providers(kind=["site"], name=site)]
    if not found:
        raise NotFoundError(404, "not_found", f"no site named {site!r}")
    hosts = [p.name async for p in api.iter_providers(kind=["host"], parent=found[0].uuid)]
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    end = start + timedelta(days=CALENDAR_DAYS)
    return await api.calendar(start, end, resolution="hour", kind=["site", "host"], name=[site, *hosts])
