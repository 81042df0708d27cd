"""FABRIC's find-slot: windows on FABRIC's hourly grid where every compute, link and facility-port
resource fits for the whole duration.

FABRIC slides a window one hour at a time from ``start`` and checks each resource on its own
(``reports_api/database/db_manager.py: find_slot``); so do we. Links and ports are checked against the
calendar directly (peak usage per hour of the direct link between the two sites, VLANs in use on the
port), so a link-only or port-only request needs no host anywhere and a link may end at a site without
hosts. Compute resources go through our own find-slot (one component per resource, pinned to its site),
which holds the packing rule; an unknown site, link or port answers ``windows: []`` as FABRIC does, with
a message saying why (an extension).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from slotbroker.domain.errors import FieldError, ValidationFailed
from slotbroker.domain.time import Bucket
from slotbroker.engine.calendar import BANDWIDTH, VLAN
from slotbroker.services.find_slot.calendar_cache import CalendarCache
from slotbroker.services.find_slot.service import FindSlotService
from slotbroker.services.protocols.fabric.translate import check_request, component_class, fabric_time
from slotbroker.wire.fabric import FabricFindSlotRequest, FabricFindSlotResponse, FabricResource, FabricWindow
from slotbroker.wire.find_slot import FindSlotResult

HOUR = 3600


@dataclass(frozen=True)
class _Need:
    """``demand`` on one of ``rows`` (alternatives: parallel links), each (capacity, used per hour)."""

    demand: int
    rows: tuple[tuple[int, tuple[int, ...]], ...]

    def fits(self, first: int, hours: int) -> bool:
        return any(
            max(used[first : first + hours], default=0) + self.demand <= cap for cap, used in self.rows
        )


class FabricFindSlot:
    def __init__(self, find_slot: FindSlotService, calendar: CalendarCache) -> None:
        self.find_slot = find_slot
        self.calendar = calendar

    def find(self, req: FabricFindSlotRequest, *, now_s: int | None = None) -> FabricFindSlotResponse:
        now = int(time.time()) if now_s is None else now_s
        start, end = check_request(req)
        zone = start.tzinfo
        s0, e0 = int(start.timestamp()), int(end.timestamp())
        answer = FabricFindSlotResponse(
            windows=[],
            total=0,
            search_start=start.isoformat(),
            search_end=end.isoformat(),
            duration_hours=req.duration,
        )
        ports = self._port_sites(req)
        needs, unknown = self._network_needs(req, ports, s0, e0)
        unknown += self._unknown_compute_sites(req)
        if unknown:
            answer.messages = unknown
            return answer
        components = [_component(i, r) for i, r in enumerate(req.resources) if r.type == "compute"]
        hours = req.duration
        last = (e0 - s0) // HOUR - hours  # FABRIC's grid: start + h hours, h = 0 .. last
        h = max(0, math.ceil((now - s0) / HOUR))  # a window cannot start in the past
        while h <= last and len(answer.windows) < req.max_results:
            if not all(n.fits(h, hours) for n in needs):
                h += 1
                continue
            t = s0 + h * HOUR
            placement: dict[str, list[str]] = {}
            if components:
                exact = self._compute(req, components, t, t + hours * HOUR, hours, now)
                if not exact.windows:
                    later = self._compute(req, components, t, e0, hours, now)
                    if not later.windows:
                        break
                    h = max(h + 1, math.ceil((int(later.windows[0].start.timestamp()) - s0) / HOUR))
                    continue
                placement = dict(exact.windows[0].placement)
            answer.windows.append(
                FabricWindow(
                    start=fabric_time(t, zone), end=fabric_time(t + hours * HOUR, zone), placement=placement
                )
            )
            h += 1
        answer.total = len(answer.windows)
        return answer

    # -- compute through our find-slot --------------------------------------------------------------------
    def _compute(
        self,
        req: FabricFindSlotRequest,
        components: list[dict[str, Any]],
        first: int,
        last_end: int,
        hours: int,
        now: int,
    ) -> FindSlotResult:
        doc = {
            "components": components,
            "earliest_start": datetime.fromtimestamp(first, UTC).isoformat(),
            "latest_end": datetime.fromtimestamp(last_end, UTC).isoformat(),
            "duration": hours * HOUR,
            "limit": 1,
            "alternates": 0,
        }
        try:
            return self.find_slot.find(doc, now_s=now)
        except ValidationFailed as exc:  # point into the FABRIC body, not the document made from it
            raise ValidationFailed(
                exc.detail, [_fabric_pointer(f, req) for f in exc.errors], exc.code
            ) from None

    def _unknown_compute_sites(self, req: FabricFindSlotRequest) -> list[str]:
        sites = self.calendar.current().catalog.sites
        return [
            f"resources[{i}]: no site {r.site!r}"
            for i, r in enumerate(req.resources)
            if r.type == "compute" and r.site and r.site not in sites
        ]

    # -- links and ports against the calendar ---------------------------------------------------------------
    def _port_sites(self, req: FabricFindSlotRequest) -> dict[int, str | None]:
        """Each facility port's site: as given, or (an extension) the only site with a port of that name."""
        known = self.calendar.current().catalog.ports
        out: dict[int, str | None] = {}
        problems: list[FieldError] = []
        for i, r in enumerate(req.resources):
            if r.type != "facility_port":
                continue
            if r.site:
                out[i] = r.site
                continue
            sites = sorted({s for s, p in known if p == r.name})
            if len(sites) == 1:
                out[i] = sites[0]
            elif sites:
                problems.append(
                    FieldError(
                        f"/resources/{i}/site",
                        f"resources[{i}]: {r.name!r} exists at {', '.join(sites)}; give its site",
                    )
                )
            else:
                out[i] = None  # unknown port: no window, as FABRIC answers
        if problems:
            raise ValidationFailed(problems[0].detail, problems)
        return out

    def _network_needs(
        self, req: FabricFindSlotRequest, port_site: dict[int, str | None], s0: int, e0: int
    ) -> tuple[list[_Need], list[str]]:
        links: dict[frozenset[str], int] = defaultdict(int)
        vlans: dict[str, int] = defaultdict(int)
        unknown: list[str] = []
        for i, r in enumerate(req.resources):
            if r.type == "link":
                links[frozenset((str(r.site_a), str(r.site_b)))] += r.bandwidth or 0
            elif r.type == "facility_port":
                site = port_site.get(i)
                if site is None:
                    unknown.append(f"resources[{i}]: no facility port named {r.name!r}")
                    continue
                vlans[f"{site}/{r.name}"] += r.vlans or 0
        if not links and not vlans:
            return [], unknown
        topo = self.calendar.current().index.topo
        view = self.find_slot.calendar_view(s0, e0, Bucket.HOUR, frozenset({"link", "facility_port"}))
        link_rows = {
            row.name: row for row in view.rows if row.kind == "link" and row.resource_class == BANDWIDTH
        }
        port_rows = {
            row.name: row for row in view.rows if row.kind == "facility_port" and row.resource_class == VLAN
        }
        needs: list[_Need] = []
        for pair, gbps in links.items():
            names = [lk.name for lk in topo.links if frozenset((lk.site_a, lk.site_b)) == pair]
            if not names:
                unknown.append(f"no link between {' and '.join(sorted(pair))}")
                continue
            needs.append(_Need(gbps, tuple((link_rows[n].capacity, link_rows[n].used) for n in names)))
        for name, count in vlans.items():
            if name not in port_rows:
                site, _, port = name.partition("/")
                unknown.append(f"no facility port {port!r} at {site}")
                continue
            needs.append(_Need(count, ((port_rows[name].capacity, port_rows[name].used),)))
        return needs, unknown


def _component(i: int, r: FabricResource) -> dict[str, Any]:
    """FABRIC resource ``i`` (compute) as our component ``vm<i+1>``."""
    resources = {"VCPU": r.cores or 0, "MEMORY_MB": (r.ram or 0) * 1024, "DISK_GB": r.disk or 0}
    resources.update({component_class(m): n for m, n in (r.components or {}).items()})
    comp: dict[str, Any] = {"name": f"vm{i + 1}", "resources": {k: v for k, v in resources.items() if v > 0}}
    if r.site:
        comp["site"] = r.site
    if not comp["resources"] and not r.site:
        comp["resources"] = {"VCPU": 1}  # "any host anywhere": the smallest thing a host can hold
    return comp


def _fabric_pointer(error: FieldError, req: FabricFindSlotRequest) -> FieldError:
    """``/components/K/...`` of our document -> ``/resources/I/...`` of FABRIC's (component ``vm<I+1>``)."""
    if error.pointer in ("/earliest_start", "/start_within"):
        return FieldError("/start", error.detail)
    if error.pointer == "/latest_end":
        return FieldError("/end", error.detail)
    parts = error.pointer.split("/")
    if len(parts) < 3 or parts[1] != "components" or not parts[2].isdigit():
        return error
    computes = [i for i, r in enumerate(req.resources) if r.type == "compute"]
    k = int(parts[2])
    if k >= len(computes):
        return error
    index = computes[k]
    if len(parts) == 5 and parts[3] == "resources":
        for model in req.resources[index].components or {}:
            if component_class(model) == parts[4]:
                return FieldError(f"/resources/{index}/components/{model}", error.detail)
        back = {"VCPU": "cores", "MEMORY_MB": "ram", "DISK_GB": "disk"}
        if parts[4] in back:
            return FieldError(f"/resources/{index}/{back[parts[4]]}", error.detail)
    if len(parts) >= 4 and parts[3] == "site":
        return FieldError(f"/resources/{index}/site", error.detail)
    return FieldError(f"/resources/{index}", error.detail)
