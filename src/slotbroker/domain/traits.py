"""Traits: qualitative capabilities of a provider (``HW_CPU_X86_AVX512F``, ``CUSTOM_RDMA``).

As in OpenStack Placement, a trait is either standard or ``CUSTOM_*``; custom ones are registered by an
admin (or by a topology document) so that a typo in a request is an error, not an empty answer.
"""

from __future__ import annotations

import re

TRAIT_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,254}$")
CUSTOM_TRAIT_RE = re.compile(r"^CUSTOM_[A-Z0-9_]{1,248}$")

STANDARD_TRAITS: frozenset[str] = frozenset(
    {
        "HW_CPU_X86_AVX2",
        "HW_CPU_X86_AVX512F",
        "HW_CPU_X86_AMD_SEV",
        "HW_CPU_AARCH64",
        "HW_GPU_CUDA",
        "HW_NIC_SRIOV",
        "HW_NIC_DPDK",
        "HW_NIC_RDMA",
        "HW_FPGA_XILINX",
        "STORAGE_DISK_SSD",
        "STORAGE_DISK_NVME",
        "STORAGE_DISK_HDD",
        "COMPUTE_BAREMETAL",
        "COMPUTE_VM",
        "NET_IPV6",
        "NET_P4",
    }
)


def trait_problem(name: str, registered_custom: frozenset[str] | set[str]) -> str | None:
    """Why ``name`` cannot be used as a trait, or ``None``."""
    if not TRAIT_RE.match(name):
        return f"{name!r} is not a trait name: upper-case letters, digits and '_' only"
    if name in STANDARD_TRAITS or name in registered_custom:
        return None
    if CUSTOM_TRAIT_RE.match(name):
        return f"custom trait {name!r} is not registered"
    return f"unknown trait {name!r}: use a standard trait or register CUSTOM_<NAME>"
