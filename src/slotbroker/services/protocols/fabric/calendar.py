"""FABRIC's calendar (``GET /calendar``, the orchestrator's ``GET /resources/calendar``): per interval,
each host and site with ``{cores,ram,disk}_{capacity,allocated,available}`` and components, each link's
bandwidth and each facility port's VLANs, in the reports API's shape
(``reports_api/database/db_manager.py: get_calendar``).

One deliberate difference: FABRIC adds up every sliver that touches an interval, so two one-hour
bookings back to back in a day count twice; ``allocated`` here is the true peak inside the interval
(docs/api.md, "FABRIC compatibility").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from slotbroker.domain.errors import FieldError, ValidationFailed
from slotbroker.domain.time import Bucket
from slotbroker.domain.vlans import VlanSet
from slotbroker.engine.calendar import BANDWIDTH
from slotbroker.engine.snapshot import NO_VLAN
from slotbroker.engine.view import ViewRow
from slotbroker.services.find_slot.calendar_cache import CalendarCache
from slotbroker.services.find_slot.service import FindSlotService
from slotbroker.services.protocols.fabric.translate import COMPUTE_CLASSES, component_key, fabric_time
from slotbroker.wire.fabric import (
    FabricAmount,
    FabricCalendar,
    FabricFacilityPort,
    FabricHost,
    FabricLink,
    FabricSite,
    FabricSlot,
)

MIB_PER_GB = 1024  # FABRIC's ram is GB; ours is MEMORY_MB


@dataclass(frozen=True)
class Filters:
    site: Sequence[str] = ()
    host: Sequence[str] = ()
    exclude_site: Sequence[str] = ()
    exclude_host: Sequence[str] = ()

    def keep_site(self, name: str) -> bool:
        return (not self.site or name in self.site) and name not in self.exclude_site

    def keep_host(self, name: str, site: str) -> bool:
        return self.keep_site(site) and (not self.host or name in self.host) and name not in self.exclude_host


def _scaled(rc: str, value: int) -> int:
    return value // MIB_PER_GB if rc == "MEMORY_MB" else value


def _usage(rows: list[ViewRow], b: int) -> tuple[dict[str, int], dict[str, FabricAmount]]:
    """The compute figures (``cores_capacity`` ...) and the components of one host or site in bucket ``b``."""
    flat = {
        f"{name}_{part}": 0
        for name in COMPUTE_CLASSES.values()
        for part in ("capacity", "allocated", "available")
    }
    components: dict[str, FabricAmount] = {}
    for row in rows:
        cap, used = _scaled(row.resource_class, row.capacity), _scaled(row.resource_class, row.used[b])
        if row.resource_class in COMPUTE_CLASSES:
            name = COMPUTE_CLASSES[row.resource_class]
            flat[f"{name}_capacity"], flat[f"{name}_allocated"] = cap, used
            flat[f"{name}_available"] = cap - used
        elif row.capacity > 0:
            components[component_key(row.resource_class)] = FabricAmount(
                capacity=cap, allocated=used, available=cap - used
            )
    return flat, components


class FabricCalendarService:
    def __init__(self, find_slot: FindSlotService, calendar: CalendarCache) -> None:
        self.find_slot = find_slot
        self.calendar = calendar

    def calendar_of(
        self, start: datetime, end: datetime, interval: str, filters: Filters, *, names: tuple[str, str]
    ) -> FabricCalendar:
        """``names`` are the query's names for start and end (``start_time`` or ``start_date`` ...)."""
        s0, e0 = int(start.timestamp()), int(end.timestamp())
        if e0 <= s0:
            raise ValidationFailed(
                f"{names[1]} must be after {names[0]}",
                [FieldError(f"#/query/{names[1]}", f"{names[1]}: not after {names[0]}")],
            )
        try:
            view = self.find_slot.calendar_view(
                s0, e0, Bucket(interval), frozenset({"host", "site", "link", "facility_port"})
            )
        except ValidationFailed as exc:
            raise ValidationFailed(exc.detail, [FieldError("#/query/interval", exc.detail)]) from None
        cached = self.calendar.current()
        host_site = cached.catalog.host_site
        topo = cached.index.topo
        by: dict[tuple[str, str], list[ViewRow]] = {}
        for row in view.rows:
            by.setdefault((row.kind, row.name), []).append(row)
        hosts = [n for (k, n) in by if k == "host" and filters.keep_host(n, host_site.get(n, ""))]
        sites = [n for (k, n) in by if k == "site" and filters.keep_site(n)]
        if filters.host:
            sites = [s for s in sites if any(host_site.get(h) == s for h in hosts)]
        links = [lk for lk in topo.links if filters.keep_site(lk.site_a) or filters.keep_site(lk.site_b)]
        links = [
            lk
            for lk in links
            if lk.site_a not in filters.exclude_site and lk.site_b not in filters.exclude_site
        ]
        ports = [p for p in topo.ports if filters.keep_site(p.site)]
        alloc = cached.index.topo.snapshot.allocations
        zone = start.tzinfo
        slots = []
        for b, t in enumerate(view.starts):
            t_end = min(t + view.bucket_s, e0)
            host_out = []
            for name in hosts:
                flat, comps = _usage(by[("host", name)], b)
                host_out.append(FabricHost(name=name, site=host_site.get(name, ""), components=comps, **flat))
            site_out = []
            for name in sites:
                flat, comps = _usage(by[("site", name)], b)
                site_out.append(FabricSite(name=name, components=comps, **flat))
            link_out = []
            for lk in links:
                row = next(r for r in by[("link", lk.name)] if r.resource_class == BANDWIDTH)
                link_out.append(
                    FabricLink(
                        name=lk.name,
                        site_a=lk.site_a,
                        site_b=lk.site_b,
                        bandwidth_capacity=row.capacity,
                        bandwidth_allocated=row.used[b],
                        bandwidth_available=row.free[b],
                    )
                )
            port_out = []
            for p in ports:
                live = (
                    (alloc.provider == p.id)
                    & (alloc.vlan != NO_VLAN)
                    & (alloc.start < t_end)
                    & (alloc.end > t)
                )
                taken = {int(v) for v in np.unique(alloc.vlan[live])}
                free = sorted(set(p.vlans) - taken)
                port_out.append(
                    FabricFacilityPort(
                        name=p.name,
                        site=p.site,
                        vlan_range=str(p.vlans),
                        total_vlans=len(p.vlans),
                        vlans_allocated=[str(v) for v in sorted(taken)],
                        vlans_available=str(VlanSet.parse(",".join(map(str, free)))) if free else "",
                    )
                )
            slots.append(
                FabricSlot(
                    start=fabric_time(t, zone),
                    end=fabric_time(t_end, zone),
                    hosts=host_out,
                    sites=site_out,
                    links=link_out,
                    facility_ports=port_out,
                )
            )
        return FabricCalendar(
            data=slots,
            interval=interval,
            query_start=start.isoformat(),
            query_end=end.isoformat(),
            total=len(slots),
        )
