"""Resource classes: the names of what is counted.

Naming rule (docs/topology-format.md):

* standard classes: ``VCPU``, ``MEMORY_MB``, ``DISK_GB``, ``BANDWIDTH_GBPS``, ``VLAN``;
* device classes by family and model, ``<FAMILY>_<MODEL>`` with family one of ``GPU``, ``FPGA``, ``NIC``
  and model upper-case letters and digits (``GPU_A100``, ``GPU_RTX6000``, ``FPGA_U280``,
  ``NIC_CONNECTX6``). A model name needs no registration: new hardware arrives faster than admins;
* ``CUSTOM_<NAME>`` classes, which an admin registers before use (typos must not invent capacity).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection
from enum import StrEnum

NAME_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,254}$")
DEVICE_RE = re.compile(r"^(GPU|FPGA|NIC)_[A-Z0-9][A-Z0-9_]{0,60}$")
CUSTOM_RE = re.compile(r"^CUSTOM_[A-Z0-9][A-Z0-9_]{0,247}$")


class Standard(StrEnum):
    VCPU = "VCPU"
    MEMORY_MB = "MEMORY_MB"
    DISK_GB = "DISK_GB"
    BANDWIDTH_GBPS = "BANDWIDTH_GBPS"
    VLAN = "VLAN"


STANDARD_DESCRIPTIONS: dict[str, str] = {
    Standard.VCPU: "Virtual CPU cores",
    Standard.MEMORY_MB: "Memory in MiB",
    Standard.DISK_GB: "Local disk in GB",
    Standard.BANDWIDTH_GBPS: "Network bandwidth in Gbit/s (links, facility ports, NICs)",
    Standard.VLAN: "VLAN tags of a facility port (counted; concrete tags are allocated per booking)",
}


class ClassKind(StrEnum):
    STANDARD = "standard"
    DEVICE = "device"
    CUSTOM = "custom"


def kind_of(name: str) -> ClassKind | None:
    """Which family a name belongs to, or ``None`` when it breaks the naming rule."""
    if name in STANDARD_DESCRIPTIONS:
        return ClassKind.STANDARD
    if DEVICE_RE.match(name):
        return ClassKind.DEVICE
    if CUSTOM_RE.match(name):
        return ClassKind.CUSTOM
    return None


def naming_problem(name: str) -> str | None:
    """Why ``name`` is not a valid resource class name, or ``None`` if it is."""
    if kind_of(name) is not None:
        return None
    if not NAME_RE.match(name):
        return f"{name!r} is not a resource class name: upper-case letters, digits and '_' only"
    return (
        f"unknown resource class {name!r}: use a standard class ({', '.join(STANDARD_DESCRIPTIONS)}), "
        "a device class GPU_<MODEL>, FPGA_<MODEL> or NIC_<MODEL>, or a registered CUSTOM_<NAME>"
    )


def unknown_problem(name: str, known: Collection[str]) -> str | None:
    """Why a request may not name ``name`` when only ``known`` (besides the standard classes) exist.

    A well-formed but unstocked device class such as ``GPU_A3O`` is almost always a typo; answering
    "nothing fits" would hide it, so it is refused with the closest existing name as a hint.
    """
    if name in STANDARD_DESCRIPTIONS or name in known:
        return None
    close = difflib.get_close_matches(name, sorted({*STANDARD_DESCRIPTIONS, *known}), n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"unknown resource class {name!r}: no inventory has it{hint}"


def device_description(name: str) -> str:
    family, _, model = name.partition("_")
    return {"GPU": "GPU", "FPGA": "FPGA", "NIC": "Network card"}[family] + f" model {model}"
