"""Site capacity summaries: the calendar cache's current index read per site (``engine/site_summary``),
so the answer costs no query when the calendar has not changed since the last search."""

from __future__ import annotations

from collections.abc import Callable

from slotbroker.domain.time import now_s, to_datetime
from slotbroker.engine.site_summary import site_capacities
from slotbroker.services.calendar_cache import CalendarCache
from slotbroker.wire.sites import ClassSummary, SiteList, SiteSummary


class SiteSummaries:
    def __init__(self, calendar: CalendarCache, *, clock: Callable[[], int] = now_s) -> None:
        self.calendar = calendar
        self.clock = clock

    def list(self, *, now_s: int | None = None) -> SiteList:
        now = self.clock() if now_s is None else now_s
        index = self.calendar.current(now).index
        items = [
            SiteSummary(
                name=s.name,
                region=s.region,
                lat=None if s.location is None else s.location[0],
                lon=None if s.location is None else s.location[1],
                hosts=s.hosts,
                links=s.links,
                ports=s.ports,
                classes=[
                    ClassSummary(
                        resource_class=c.resource_class,
                        capacity=c.capacity,
                        free=c.free,
                        largest_free=c.largest_free,
                        hosts=c.hosts,
                    )
                    for c in s.classes
                ],
            )
            for s in site_capacities(index, now)
        ]
        return SiteList(at=to_datetime(now), items=items)


__all__ = ["SiteSummaries"]
