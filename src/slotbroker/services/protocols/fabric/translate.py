"""FABRIC's request fields read as ours, and our answers written in FABRIC's terms.

FABRIC describes compute in cores, RAM and disk in GB and components by model name: FABlib sends the
reports database's ``Type-Model`` keys (``GPU-Tesla T4``, ``SmartNIC-ConnectX-6``), people write the
FABlib names (``GPU_RTX6000``, ``NIC_ConnectX_6``); both map to our classes. Validation follows FABRIC's
own controller (``reports_api/response_code/calendar_controller.py``): every problem is a 400, but ours
names the field in FABRIC's document (``/end``, ``/resources/2/vlans``).
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo

from slotbroker.domain.errors import FieldError, ValidationFailed
from slotbroker.domain.limits import time_problems
from slotbroker.wire.fabric import FabricFindSlotRequest

MAX_RANGE_DAYS = 30  # FABRIC refuses a longer search range (reports API and FABlib alike)
MODEL_ALIASES = {
    "GPU_TESLA_T4": "GPU_T4",
    "GPU_TESLAT4": "GPU_T4",
    "SMARTNIC_CONNECTX_6": "NIC_CONNECTX6",
    "SMARTNIC_CONNECTX_5": "NIC_CONNECTX5",
    "SHAREDNIC_CONNECTX_6": "NIC_CONNECTX6",
    "NIC_CONNECTX_6": "NIC_CONNECTX6",
    "NIC_CONNECTX_5": "NIC_CONNECTX5",
    "FPGA_XILINX_U280": "FPGA_U280",
}
# Our class -> the reports database's component key, for the calendar (FABRIC's own spelling).
FABRIC_KEYS = {
    "GPU_T4": "GPU-Tesla T4",
    "GPU_RTX6000": "GPU-RTX6000",
    "GPU_A30": "GPU-A30",
    "GPU_A40": "GPU-A40",
    "NIC_CONNECTX6": "SmartNIC-ConnectX-6",
    "NIC_CONNECTX5": "SmartNIC-ConnectX-5",
    "FPGA_U280": "FPGA-Xilinx-U280",
    "NVME_P4510": "NVME-P4510",
}
COMPUTE_CLASSES = {"VCPU": "cores", "MEMORY_MB": "ram", "DISK_GB": "disk"}


def component_class(model: str) -> str:
    norm = re.sub(r"[^A-Z0-9]+", "_", model.upper()).strip("_")
    return MODEL_ALIASES.get(norm, norm)


def component_key(resource_class: str) -> str:
    return FABRIC_KEYS.get(resource_class, resource_class)


def parse_instant(text: str, field: str, *, where: str | None = None) -> datetime:
    """An ISO 8601 instant with an offset, as Python's ``fromisoformat`` reads it (FABRIC's parser, so
    FABlib's ``2026-12-01 10:00:00 +0000`` works); a query's ``+`` decoded to a space is put back."""
    at = where or f"/{field}"
    value: datetime | None = None
    for candidate in (text, text.replace(" ", "+")):
        try:
            value = datetime.fromisoformat(candidate.replace("Z", "+00:00"))
            break
        except ValueError:
            continue
    if value is None:
        raise ValidationFailed(
            f"{field} is not an ISO 8601 date-time", [FieldError(at, f"{field}: cannot parse {text!r}")]
        )
    if value.tzinfo is None:
        raise ValidationFailed(
            f"{field} needs a UTC offset", [FieldError(at, f"{field}: add an offset such as +00:00")]
        )
    try:
        seconds = int(value.timestamp())
    except (OverflowError, ValueError):
        seconds = None
    if seconds is None or (out := time_problems((at, seconds))):
        detail = out[0].detail if seconds is not None else "outside the supported range"
        raise ValidationFailed(
            f"{field} is outside the supported times", [FieldError(at, f"{field}: {detail}")]
        )
    return value


def fabric_time(seconds: int, zone: tzinfo | None) -> str:
    """FABRIC's answer format: ``datetime.isoformat()`` in the offset the client used."""
    return datetime.fromtimestamp(seconds, zone).isoformat()


def check_request(req: FabricFindSlotRequest) -> tuple[datetime, datetime]:
    """FABRIC's find-slot rules (a 400 naming each offending field); the parsed start and end."""
    start, end = parse_instant(req.start, "start"), parse_instant(req.end, "end")
    problems: list[FieldError] = []
    range_h = (end - start).total_seconds() / 3600
    if start >= end:
        problems.append(FieldError("/end", "end: must be after start"))
    elif range_h > MAX_RANGE_DAYS * 24:
        problems.append(
            FieldError(
                "/end", f"end: the search range must not exceed {MAX_RANGE_DAYS} days, got {range_h / 24:.1f}"
            )
        )
    elif req.duration > range_h:
        problems.append(FieldError("/duration", f"duration: {req.duration} h exceeds the search range"))
    for i, r in enumerate(req.resources):
        at = f"/resources/{i}"
        if r.type == "link":
            for key in ("site_a", "site_b", "bandwidth"):
                if getattr(r, key) is None or getattr(r, key) == "":
                    problems.append(FieldError(f"{at}/{key}", f"resources[{i}] (link): {key} is required"))
        elif r.type == "facility_port":
            for key in ("name", "vlans"):
                if getattr(r, key) is None or getattr(r, key) == "":
                    problems.append(
                        FieldError(f"{at}/{key}", f"resources[{i}] (facility_port): {key} is required")
                    )
    if problems:
        raise ValidationFailed(problems[0].detail, problems)
    return start, end
