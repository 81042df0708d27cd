"""The FABRIC-like demo topology and the synthetic bookings generator.

The overbooking checks here are deliberately brute force and independent of the generator's own sweep:
every booking starts and ends on an hour boundary, so summing each booking into every hour it covers
and comparing with capacity checks every instant.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slotbroker.demo import Booking, fabric_like_topology, synthetic_bookings
from slotbroker.demo.bookings import peak_usage
from slotbroker.domain.inventory import Inventory
from slotbroker.domain.network import FacilityPortSpec, LinkSpec, facility_port_provider_name
from slotbroker.domain.providers import ProviderKind
from slotbroker.domain.topology import ProviderNode, Registry, Topology, validate_topology
from slotbroker.domain.vlans import VlanSet

HOUR = 3600
START = 1_767_225_600  # 2026-01-01T00:00:00Z


def nodes(doc: Topology, kind: ProviderKind) -> list[ProviderNode]:
    return [node for node, _, _ in doc.walk() if node.kind == kind]


# --- topology ----------------------------------------------------------------------------------------


def test_fabric_topology_validates_and_is_deterministic() -> None:
    doc = fabric_like_topology()
    validate_topology(doc, Registry())
    assert doc.resource_classes == []
    assert doc.traits == []
    assert doc.model_dump() == fabric_like_topology().model_dump()


def test_fabric_has_about_30_located_sites_in_regions() -> None:
    doc = fabric_like_topology()
    regions = nodes(doc, ProviderKind.REGION)
    assert 3 <= len(regions) <= 4
    sites = nodes(doc, ProviderKind.SITE)
    assert 28 <= len(sites) <= 34
    assert {"STAR", "TACC", "UTAH", "AMST", "CERN", "TOKY"} <= {s.name for s in sites}
    for site in sites:
        assert site.location is not None
        assert 2 <= len(site.children) <= 6
        assert all(h.name.startswith(site.name.lower() + "-w") for h in site.children)


def test_fabric_workers_look_like_r7525() -> None:
    hosts = nodes(fabric_like_topology(), ProviderKind.HOST)
    models: set[str] = set()
    for host in hosts:
        inv = host.inventories
        assert inv["VCPU"].total == 128
        assert inv["MEMORY_MB"].total == 524288
        assert 3500 <= inv["DISK_GB"].total <= 4000
        assert inv["NIC_CONNECTX6"].total == 2
        assert "STORAGE_DISK_NVME" in host.traits
        gpus = [rc for rc in inv if rc.startswith("GPU_")]
        models.update(gpus)
        assert ("HW_GPU_CUDA" in host.traits) == bool(gpus)
        assert all(1 <= inv[rc].total <= 3 for rc in gpus)
        assert ("HW_FPGA_XILINX" in host.traits) == ("FPGA_U280" in inv)
        assert host.aggregates[0] in {"fabric-core", "fabric-edge"}
    assert models == {"GPU_RTX6000", "GPU_A30", "GPU_A40", "GPU_T4"}
    assert sum(1 for h in hosts if "FPGA_U280" in h.inventories) >= 3
    assert any("NIC_CONNECTX5" in h.inventories for h in hosts)


def test_fabric_link_graph_is_connected() -> None:
    doc = fabric_like_topology()
    sites = {s.name for s in nodes(doc, ProviderKind.SITE)}
    graph: dict[str, set[str]] = defaultdict(set)
    for link in doc.links:
        a, b = link.endpoints
        graph[a].add(b)
        graph[b].add(a)
    seen = {"STAR"}
    queue = deque(["STAR"])
    while queue:
        for nxt in graph[queue.popleft()] - seen:
            seen.add(nxt)
            queue.append(nxt)
    assert seen == sites
    names = [link.name for link in doc.links]
    assert len(names) == len(set(names))
    assert "STAR-MICH" in names
    assert all(link.bandwidth_gbps in {25, 40, 100} for link in doc.links)


def test_fabric_latency_follows_distance() -> None:
    links = {link.name: link for link in fabric_like_topology().links}
    # Chicago - Ann Arbor is about 320 km; Chicago - Amsterdam about 6,600 km.
    assert links["STAR-MICH"].latency_ms == pytest.approx(0.2 + 320 / 200, abs=0.2)
    assert links["STAR-AMST"].latency_ms == pytest.approx(0.2 + 6610 / 200, abs=1.0)
    assert all(link.latency_ms >= 0.2 for link in links.values())


def test_fabric_facility_ports() -> None:
    doc = fabric_like_topology()
    ports = {p.name: p for p in doc.facility_ports}
    assert 6 <= len(ports) <= 12
    assert ports["Chameleon-StarLight"].site == "STAR"
    assert ports["Chameleon-StarLight"].vlans == "3300-3309"
    assert ports["Cloud-Facility-AWS"].vlans == "100-200,300-350"
    for port in ports.values():
        vlans = VlanSet.parse(port.vlans)
        assert str(vlans) == port.vlans
        assert len(vlans) >= 10
        assert port.bandwidth_gbps >= 10


# --- bookings: an independent brute-force checker ----------------------------------------------------


def capacities(doc: Topology) -> dict[tuple[str, str], int]:
    caps: dict[tuple[str, str], int] = {}
    for host in nodes(doc, ProviderKind.HOST):
        for rc, inv in host.inventories.items():
            caps[(host.name, rc)] = inv.capacity
    for link in doc.links:
        caps[(link.name, "BANDWIDTH_GBPS")] = link.bandwidth_gbps
    for port in doc.facility_ports:
        name = facility_port_provider_name(port.site, port.name)
        caps[(name, "BANDWIDTH_GBPS")] = port.bandwidth_gbps
        caps[(name, "VLAN")] = len(VlanSet.parse(port.vlans))
    return caps


def port_vlans(doc: Topology) -> dict[str, VlanSet]:
    return {facility_port_provider_name(p.site, p.name): VlanSet.parse(p.vlans) for p in doc.facility_ports}


def assert_never_overbooked(doc: Topology, bookings: Iterable[Booking], start: int, days: int) -> None:
    caps = capacities(doc)
    vlans = port_vlans(doc)
    end = start + days * 86_400
    usage: dict[tuple[int, str, str], int] = defaultdict(int)
    tags: dict[tuple[int, str], list[int]] = defaultdict(list)
    for b in bookings:
        assert start <= b.start_s < b.end_s <= end, b
        assert (b.start_s - start) % HOUR == 0, b
        assert (b.end_s - start) % HOUR == 0, b
        for hour in range(b.start_s, b.end_s, HOUR):
            for a in b.allocations:
                assert (a.provider_name, a.resource_class) in caps, a
                assert a.amount >= 1, a
                usage[(hour, a.provider_name, a.resource_class)] += a.amount
                if a.vlan_tag is not None:
                    assert a.resource_class == "VLAN"
                    assert a.vlan_tag in vlans[a.provider_name], a
                    tags[(hour, a.provider_name)].append(a.vlan_tag)
    for (hour, provider, rc), used in usage.items():
        assert used <= caps[(provider, rc)], (hour, provider, rc, used)
    for (hour, port), booked in tags.items():
        assert len(booked) == len(set(booked)), (hour, port, sorted(booked))


def test_peak_usage_sweep_treats_intervals_as_half_open() -> None:
    assert peak_usage([(0, 10, 3), (10, 20, 4)], 0, 20) == 4
    assert peak_usage([(0, 10, 3), (5, 20, 4)], 0, 20) == 7
    assert peak_usage([(0, 10, 3), (5, 20, 4)], 10, 20) == 4
    assert peak_usage([(0, 10, 3), (20, 30, 4)], 10, 20) == 0


def test_bookings_are_deterministic_for_a_seed() -> None:
    doc = fabric_like_topology()
    first = synthetic_bookings(doc, start_s=START, days=3, seed=7)
    assert first == synthetic_bookings(doc, start_s=START, days=3, seed=7)
    assert first != synthetic_bookings(doc, start_s=START, days=3, seed=8)


def test_week_of_fabric_bookings_is_never_overbooked_and_realistic() -> None:
    doc = fabric_like_topology()
    bookings = synthetic_bookings(doc, start_s=START, days=7, seed=2026)
    assert len(bookings) > 1000
    assert_never_overbooked(doc, bookings, START, 7)

    classes = {a.resource_class for b in bookings for a in b.allocations}
    assert {"VCPU", "MEMORY_MB", "DISK_GB", "BANDWIDTH_GBPS", "VLAN", "FPGA_U280"} <= classes
    assert {"GPU_RTX6000", "GPU_A30", "GPU_A40", "GPU_T4"} <= classes
    links = {link.name for link in doc.links}
    assert any(a.provider_name in links for b in bookings for a in b.allocations)
    durations = {(b.end_s - b.start_s) // HOUR for b in bookings}
    assert min(durations) == 1
    assert max(durations) > 48
    cores = [a.amount for b in bookings for a in b.allocations if a.resource_class == "VCPU"]
    assert min(cores) == 2
    assert max(cores) == 64
    assert len({b.name for b in bookings}) == len(bookings)


def test_utilisation_reaches_the_target() -> None:
    doc = fabric_like_topology()
    days = 4
    bookings = synthetic_bookings(doc, start_s=START, days=days, seed=3, target_utilisation=0.4)
    vcpu_hours = sum(
        a.amount * (b.end_s - b.start_s) // HOUR
        for b in bookings
        for a in b.allocations
        if a.resource_class == "VCPU"
    )
    capacity_hours = sum(h.inventories["VCPU"].capacity for h in nodes(doc, ProviderKind.HOST)) * days * 24
    assert 0.4 <= vcpu_hours / capacity_hours < 0.45


def test_bad_arguments_are_rejected() -> None:
    doc = fabric_like_topology()
    with pytest.raises(ValueError, match="days"):
        synthetic_bookings(doc, start_s=START, days=0, seed=1)
    with pytest.raises(ValueError, match="target_utilisation"):
        synthetic_bookings(doc, start_s=START, days=1, seed=1, target_utilisation=1.5)


# --- property: small random topologies, pushed to saturation ---------------------------------------


@st.composite
def small_topologies(draw: st.DrawFn) -> Topology:
    """1-3 sites of 1-3 tight hosts, optional links and a port with very few VLAN tags."""
    site_count = draw(st.integers(1, 3))
    sites = []
    for s in range(site_count):
        hosts = []
        for h in range(draw(st.integers(1, 3))):
            inv = {
                "VCPU": Inventory(
                    total=draw(st.integers(1, 16)),
                    allocation_ratio=draw(st.sampled_from([1.0, 2.0])),
                ),
                "MEMORY_MB": Inventory(total=draw(st.integers(512, 16384))),
            }
            if draw(st.booleans()):
                inv["GPU_A100"] = Inventory(total=draw(st.integers(1, 2)))
            if draw(st.booleans()):
                inv["DISK_GB"] = Inventory(total=draw(st.integers(10, 500)), reserved=5)
            hosts.append(ProviderNode(name=f"s{s}-h{h}", kind=ProviderKind.HOST, inventories=inv))
        sites.append(ProviderNode(name=f"S{s}", kind=ProviderKind.SITE, children=hosts))
    links = [
        LinkSpec(
            name=f"S{s}-S{s + 1}", endpoints=(f"S{s}", f"S{s + 1}"), bandwidth_gbps=draw(st.integers(1, 30))
        )
        for s in range(site_count - 1)
    ]
    low = draw(st.integers(1, 4000))
    ports = [
        FacilityPortSpec(
            name="ext",
            site="S0",
            vlans=f"{low}-{low + draw(st.integers(0, 2))}",
            bandwidth_gbps=draw(st.integers(1, 12)),
        )
    ]
    return Topology(providers=sites, links=links, facility_ports=ports)


@settings(max_examples=40, deadline=None)
@given(
    doc=small_topologies(),
    seed=st.integers(0, 2**32),
    days=st.integers(1, 3),
    target=st.floats(0.1, 1.0),
)
def test_random_small_topologies_are_never_overbooked(
    doc: Topology, seed: int, days: int, target: float
) -> None:
    validate_topology(doc, Registry())
    bookings = synthetic_bookings(doc, start_s=START + 1234, days=days, seed=seed, target_utilisation=target)
    assert_never_overbooked(doc, bookings, START + 1234, days)
    assert bookings == synthetic_bookings(
        doc, start_s=START + 1234, days=days, seed=seed, target_utilisation=target
    )
