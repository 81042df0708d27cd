"""A FABRIC-like testbed as a topology document: about 30 sites, a core/edge network, facility ports.

Why: demos, tests and benchmarks need an inventory shaped like a real research testbed (many sites, a few
GPU and FPGA hosts, inter-site links with latency, hand-offs to external clouds) that is reproducible and
public. Names and coordinates follow FABRIC's sites (https://portal.fabric-testbed.net), but hardware
counts, links and VLAN ranges are made up; no real allocation data is implied.

Every worker is modelled on FABRIC's Dell R7525: two 64-core AMD EPYC CPUs (``VCPU`` 128), 512 GiB RAM
(``MEMORY_MB`` 524288), about 3.8 TB NVMe (``DISK_GB`` 3840) and two ConnectX-6 NICs. Some workers add
GPUs (RTX6000, A30, A40, T4), a Xilinx U280 FPGA or ConnectX-5 NICs by fixed rules, so the document is
the same on every call. Link latency is derived from the great-circle distance between the two sites:
``0.2 ms + 1 ms per 200 km``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from slotbroker.domain.inventory import Inventory
from slotbroker.domain.network import FacilityPortSpec, LinkSpec
from slotbroker.domain.providers import Location, ProviderKind
from slotbroker.domain.topology import ProviderNode, Topology


@dataclass(frozen=True)
class SiteSpec:
    name: str
    region: str
    lat: float
    lon: float
    workers: int
    core: bool = False


SITES: tuple[SiteSpec, ...] = (
    SiteSpec("STAR", "us-central", 41.8960, -87.6180, 6, core=True),
    SiteSpec("MICH", "us-central", 42.2780, -83.7380, 3),
    SiteSpec("NCSA", "us-central", 40.1150, -88.2240, 4),
    SiteSpec("INDI", "us-central", 39.7740, -86.1650, 3),
    SiteSpec("KANS", "us-central", 38.9580, -95.2520, 3, core=True),
    SiteSpec("GPN", "us-central", 39.0990, -94.5780, 2),
    SiteSpec("DALL", "us-central", 32.7800, -96.8000, 4, core=True),
    SiteSpec("TACC", "us-central", 30.3900, -97.7260, 5),
    SiteSpec("NEWY", "us-east", 40.7130, -74.0060, 5, core=True),
    SiteSpec("WASH", "us-east", 38.9070, -77.0370, 5, core=True),
    SiteSpec("GATECH", "us-east", 33.7760, -84.3980, 4, core=True),
    SiteSpec("MASS", "us-east", 42.2040, -72.6160, 3),
    SiteSpec("MAX", "us-east", 38.9890, -76.9380, 3),
    SiteSpec("CLEM", "us-east", 34.6830, -82.8370, 2),
    SiteSpec("FIU", "us-east", 25.7570, -80.3740, 3),
    SiteSpec("PSC", "us-east", 40.4440, -79.9430, 4),
    SiteSpec("PRIN", "us-east", 40.3430, -74.6510, 2),
    SiteSpec("RUTG", "us-east", 40.5230, -74.4580, 3),
    SiteSpec("RENC", "us-east", 35.9390, -79.0180, 4),
    SiteSpec("SALT", "us-west", 40.7610, -111.8910, 4, core=True),
    SiteSpec("UTAH", "us-west", 40.7650, -111.8420, 5),
    SiteSpec("LOSA", "us-west", 34.0520, -118.2440, 5, core=True),
    SiteSpec("SEAT", "us-west", 47.6060, -122.3320, 4, core=True),
    SiteSpec("UCSD", "us-west", 32.8800, -117.2340, 4),
    SiteSpec("SRI", "us-west", 37.4570, -122.1750, 2),
    SiteSpec("LBNL", "us-west", 37.8760, -122.2470, 3),
    SiteSpec("HAWI", "us-west", 21.2970, -157.8170, 2),
    SiteSpec("AMST", "international", 52.3560, 4.9550, 4, core=True),
    SiteSpec("CERN", "international", 46.2340, 6.0530, 3),
    SiteSpec("BRIST", "international", 51.4560, -2.6030, 2),
    SiteSpec("TOKY", "international", 35.7130, 139.7620, 2),
)

REGIONS: tuple[str, ...] = ("us-east", "us-central", "us-west", "international")

# The core mesh (100 Gbps everywhere) and each edge site's uplinks as (core, edge, Gbps).
CORE_LINKS: tuple[tuple[str, str], ...] = (
    ("STAR", "NEWY"),
    ("STAR", "WASH"),
    ("NEWY", "WASH"),
    ("WASH", "GATECH"),
    ("GATECH", "DALL"),
    ("STAR", "KANS"),
    ("KANS", "DALL"),
    ("KANS", "SALT"),
    ("DALL", "LOSA"),
    ("SALT", "LOSA"),
    ("SALT", "SEAT"),
    ("SEAT", "LOSA"),
    ("NEWY", "AMST"),
    ("STAR", "AMST"),
)
CORE_GBPS = 100
UPLINKS: tuple[tuple[str, str, int], ...] = (
    ("STAR", "MICH", 100),
    ("STAR", "NCSA", 100),
    ("KANS", "NCSA", 100),
    ("STAR", "INDI", 100),
    ("KANS", "GPN", 100),
    ("DALL", "TACC", 100),
    ("KANS", "TACC", 100),
    ("NEWY", "MASS", 100),
    ("WASH", "MAX", 100),
    ("NEWY", "MAX", 100),
    ("GATECH", "CLEM", 25),
    ("GATECH", "FIU", 40),
    ("WASH", "FIU", 40),
    ("WASH", "PSC", 100),
    ("STAR", "PSC", 100),
    ("NEWY", "PRIN", 40),
    ("NEWY", "RUTG", 100),
    ("WASH", "RENC", 100),
    ("GATECH", "RENC", 100),
    ("SALT", "UTAH", 100),
    ("LOSA", "UCSD", 100),
    ("LOSA", "SRI", 25),
    ("LOSA", "LBNL", 100),
    ("SEAT", "LBNL", 100),
    ("LOSA", "HAWI", 40),
    ("AMST", "CERN", 100),
    ("AMST", "BRIST", 40),
    ("SEAT", "TOKY", 100),
    ("LOSA", "TOKY", 100),
)

# (site, port name, VLAN ranges, Gbps)
FACILITY_PORTS: tuple[tuple[str, str, str, int], ...] = (
    ("STAR", "Chameleon-StarLight", "3300-3309", 100),
    ("TACC", "Chameleon-TACC", "3210-3229", 100),
    ("RENC", "RENC-Chameleon", "2100-2149", 40),
    ("WASH", "Cloud-Facility-AWS", "100-200,300-350", 100),
    ("DALL", "Cloud-Facility-Azure", "1000-1099", 100),
    ("SEAT", "Cloud-Facility-GCP", "2000-2099", 50),
    ("MASS", "OCT-MGHPCC", "1001-1010", 10),
    ("AMST", "SURF-NetherLight", "3700-3799", 100),
    ("LBNL", "ESnet-SENSE", "500-599,600-650", 100),
)

GPU_MODELS: tuple[str, ...] = ("GPU_RTX6000", "GPU_T4", "GPU_A30", "GPU_A40")
FPGA_SITES: frozenset[str] = frozenset({"STAR", "TACC", "UCSD", "MASS", "UTAH", "CERN"})

WORKER_VCPU = 128
WORKER_MEMORY_MB = 524_288
WORKER_DISK_GB = 3840
BASE_TRAITS: tuple[str, ...] = (
    "HW_CPU_X86_AVX2",
    "HW_CPU_X86_AMD_SEV",
    "HW_NIC_SRIOV",
    "STORAGE_DISK_NVME",
    "COMPUTE_VM",
)
EARTH_RADIUS_KM = 6371.0


def fabric_like_topology() -> Topology:
    """The whole FABRIC-like document: regions -> sites -> workers, links and facility ports."""
    return Topology(providers=_regions(), links=_links(), facility_ports=_ports())


def great_circle_km(a: SiteSpec, b: SiteSpec) -> float:
    """Haversine distance between two sites in kilometres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a.lat, a.lon, b.lat, b.lon))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def latency_ms(a: SiteSpec, b: SiteSpec) -> float:
    """One-way latency: 0.2 ms of equipment plus 1 ms per 200 km of fibre, rounded to 0.01 ms."""
    return round(0.2 + great_circle_km(a, b) / 200.0, 2)


def _regions() -> list[ProviderNode]:
    return [
        ProviderNode(
            name=region,
            kind=ProviderKind.REGION,
            children=[_site(i, spec) for i, spec in enumerate(SITES) if spec.region == region],
        )
        for region in REGIONS
    ]


def _aggregate(spec: SiteSpec) -> str:
    return "fabric-core" if spec.core else "fabric-edge"


def _site(index: int, spec: SiteSpec) -> ProviderNode:
    return ProviderNode(
        name=spec.name,
        kind=ProviderKind.SITE,
        location=Location(lat=spec.lat, lon=spec.lon),
        aggregates=[_aggregate(spec), f"fabric-{spec.region}"],
        children=[_worker(index, spec, w) for w in range(1, spec.workers + 1)],
    )


def _worker_devices(index: int, spec: SiteSpec, worker: int) -> dict[str, int]:
    """Extra devices of worker ``worker`` (1-based) at site number ``index``, by fixed rules."""
    devices = {"NIC_CONNECTX6": 2}
    if worker == 2:
        devices[GPU_MODELS[index % len(GPU_MODELS)]] = 1 + index % 3
    if worker == 3 and index % 3 == 0:
        devices[GPU_MODELS[(index + 1) % len(GPU_MODELS)]] = 2
    if worker == 1 and spec.name in FPGA_SITES:
        devices["FPGA_U280"] = 1
    if (index + worker) % 3 == 0:
        devices["NIC_CONNECTX5"] = 1
    return devices


def _worker(index: int, spec: SiteSpec, worker: int) -> ProviderNode:
    devices = _worker_devices(index, spec, worker)
    traits = list(BASE_TRAITS)
    if any(name.startswith("GPU_") for name in devices):
        traits.append("HW_GPU_CUDA")
    if any(name.startswith("FPGA_") for name in devices):
        traits.append("HW_FPGA_XILINX")
    inventories = {
        "VCPU": Inventory(total=WORKER_VCPU),
        "MEMORY_MB": Inventory(total=WORKER_MEMORY_MB),
        "DISK_GB": Inventory(total=WORKER_DISK_GB),
    }
    inventories.update({name: Inventory(total=count) for name, count in devices.items()})
    return ProviderNode(
        name=f"{spec.name.lower()}-w{worker}",
        kind=ProviderKind.HOST,
        traits=traits,
        aggregates=[_aggregate(spec)],
        inventories=inventories,
    )


def _links() -> list[LinkSpec]:
    by_name = {spec.name: spec for spec in SITES}
    pairs = [(a, b, CORE_GBPS) for a, b in CORE_LINKS] + list(UPLINKS)
    return [
        LinkSpec(
            name=f"{a}-{b}",
            endpoints=(a, b),
            bandwidth_gbps=gbps,
            latency_ms=latency_ms(by_name[a], by_name[b]),
        )
        for a, b, gbps in pairs
    ]


def _ports() -> list[FacilityPortSpec]:
    return [
        FacilityPortSpec(
            name=name, site=site, device=f"{site.lower()}-data-sw", vlans=vlans, bandwidth_gbps=gbps
        )
        for site, name, vlans, gbps in FACILITY_PORTS
    ]
