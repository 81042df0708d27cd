"""FABRIC's find-slot and calendar wire formats, translated to and from ours.

FABlib users can point at slotbroker unchanged. FABRIC describes compute in cores, RAM and disk in GB
and components by model name (``GPU_RTX6000``, ``SmartNIC_ConnectX_6``, ``FPGA_Xilinx_U280``); links by
their two sites; facility ports by name. Links and ports attach to a site, so when no compute resource
sits at that site we add an empty *anchor* component pinned there. Unlike FABRIC, unparseable dates are a
400 naming the field, never a 500.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from slotbroker.domain.errors import FieldError, ValidationFailed
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire.fabric import FabricFindSlotRequest, FabricFindSlotResponse, FabricWindow
from slotbroker.wire.find_slot import FindSlotResult

ANCHOR = "anchor-"  # components standing for "this site" where only a link or port attaches
MODEL_ALIASES = {
    "GPU_TESLA_T4": "GPU_T4",
    "SMARTNIC_CONNECTX_6": "NIC_CONNECTX6",
    "SMARTNIC_CONNECTX_5": "NIC_CONNECTX5",
    "SHAREDNIC_CONNECTX_6": "NIC_CONNECTX6",
    "FPGA_XILINX_U280": "FPGA_U280",
}


def component_class(model: str) -> str:
    norm = re.sub(r"[^A-Z0-9]+", "_", model.upper()).strip("_")
    return MODEL_ALIASES.get(norm, norm)


def parse_instant(text: str, field: str, *, where: str | None = None) -> datetime:
    """An ISO 8601 instant with an offset; ``where`` is the pointer to blame (default ``/field``)."""
    at = where or f"/{field}"
    try:
        value = datetime.fromisoformat(text.replace(" ", "+").replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(
            f"{field} is not an ISO 8601 date-time", [FieldError(at, f"cannot parse {text!r}")]
        ) from None
    if value.tzinfo is None:
        raise ValidationFailed(
            f"{field} needs a UTC offset", [FieldError(at, "add an offset such as +00:00")]
        )
    return value


def to_native(req: FabricFindSlotRequest, uow: UnitOfWork) -> dict[str, Any]:
    """Our find-slot document for a FABRIC request (raises ValidationFailed with pointers)."""
    start, end = parse_instant(req.start, "start"), parse_instant(req.end, "end")
    components: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    ports: list[dict[str, Any]] = []
    anchors: dict[str, str] = {}
    problems: list[FieldError] = []

    def at_site(site: str) -> str:
        for comp in components:
            if comp.get("site") == site and comp["name"].startswith("vm"):
                return str(comp["name"])
        if site not in anchors:
            anchors[site] = f"{ANCHOR}{len(anchors) + 1}"
            components.append({"name": anchors[site], "site": site, "resources": {}})
        return anchors[site]

    for i, r in enumerate(req.resources):
        if r.type != "compute":
            continue
        resources = {"VCPU": r.cores or 0, "MEMORY_MB": (r.ram or 0) * 1024, "DISK_GB": r.disk or 0}
        resources.update({component_class(m): n for m, n in (r.components or {}).items()})
        comp: dict[str, Any] = {
            "name": f"vm{i + 1}",
            "resources": {k: v for k, v in resources.items() if v > 0},
        }
        if r.site:
            comp["site"] = r.site
        components.append(comp)
    for i, r in enumerate(req.resources):
        if r.type == "link":
            if not r.site_a or not r.site_b:
                problems.append(FieldError(f"/resources/{i}", "a link needs site_a and site_b"))
                continue
            links.append(
                {"a": at_site(r.site_a), "b": at_site(r.site_b), "bandwidth_gbps": max(1, r.bandwidth or 1)}
            )
        elif r.type == "facility_port":
            if not r.name:
                problems.append(FieldError(f"/resources/{i}/name", "a facility port needs its name"))
                continue
            site = r.site or _port_site(uow, r.name, f"/resources/{i}/name", problems)
            if site is None:
                continue
            port: dict[str, Any] = {
                "site": site,
                "port": r.name,
                "component": at_site(site),
                "vlan_count": max(1, r.vlans or 1),
            }
            if r.bandwidth:
                port["bandwidth_gbps"] = r.bandwidth
            ports.append(port)
    if problems:
        raise ValidationFailed("the resources are incomplete", problems)
    return {
        "components": components,
        "links": links,
        "facility_ports": ports,
        "earliest_start": start.isoformat(),
        "latest_end": end.isoformat(),
        "duration": req.duration * 3600,
        "limit": req.max_results,
    }


def _port_site(uow: UnitOfWork, name: str, at: str, problems: list[FieldError]) -> str | None:
    sites = sorted({p.site.name for p in uow.network.ports() if p.port_name == name})
    if len(sites) == 1:
        return sites[0]
    problems.append(
        FieldError(
            at,
            f"no facility port named {name!r}"
            if not sites
            else f"{name!r} exists at {', '.join(sites)}; give its site",
        )
    )
    return None


def to_fabric(result: FindSlotResult, duration_hours: int) -> FabricFindSlotResponse:
    return FabricFindSlotResponse(
        windows=[
            FabricWindow(
                start=w.start,
                end=w.end,
                placement={c: h for c, h in w.placement.items() if not c.startswith(ANCHOR)},
            )
            for w in result.windows
        ],
        total=len(result.windows),
        search_start=result.search_start,
        search_end=result.search_end,
        duration_hours=duration_hours,
    )
