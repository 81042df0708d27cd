"""Synthetic bookings for a topology: a realistic, reproducible, never-overbooked calendar.

Why: find-slot, the calendar views and the benchmarks need a busy calendar to work against. A generator
that overbooks would hide bugs (a broker should never see such data), so correctness comes first: every
booking is checked against the bookings already accepted with a plain sorted interval sweep, per
``(provider, resource class)``, before it is added.

Shapes: VMs of 2-64 cores with memory and disk proportional to the host's own ratio, some with a GPU,
FPGA or NIC of the host; link bandwidth between linked sites; facility-port bookings carrying one concrete
VLAN tag of the port and some bandwidth. Durations run from 1 hour to 5 days. All times are ``start_s``
plus whole hours (pass an hour-aligned ``start_s`` for wall-clock hours), and every booking ends by
``start_s + days * 86400``. Intervals are half-open: a booking ending at ``t`` frees its capacity for one
starting at ``t``.

Generation stops when host VCPU usage reaches ``target_utilisation`` of the VCPU capacity over the
horizon, or when many attempts in a row are rejected (the topology is full), so it always terminates.
The result depends only on the document and the arguments: one ``random.Random(seed)``, no set order.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from slotbroker.domain.inventory import Inventory
from slotbroker.domain.network import facility_port_provider_name
from slotbroker.domain.providers import ProviderKind
from slotbroker.domain.topology import Topology
from slotbroker.domain.vlans import VlanSet

HOUR_S = 3600
DAY_S = 86_400
VM_CORES: tuple[int, ...] = (2, 4, 8, 16, 32, 64)
VM_CORE_WEIGHTS: tuple[int, ...] = (20, 25, 25, 15, 10, 5)
LINK_GBPS: tuple[int, ...] = (1, 5, 10, 25, 40)
PORT_GBPS: tuple[int, ...] = (1, 5, 10, 20)
PROJECTS: tuple[str, ...] = (
    "edge-ai",
    "p4-telemetry",
    "dtn-transfer",
    "iot-hub",
    "quantum-net",
    "cdn-lab",
    "5g-core",
    "climate-sim",
    "genomics",
    "netsec-class",
)
MAX_CONSECUTIVE_FAILURES = 500
MAX_ATTEMPTS = 500_000


@dataclass(frozen=True)
class BookedAmount:
    """``amount`` of ``resource_class`` on ``provider_name``; ``vlan_tag`` only for a port's ``VLAN``."""

    provider_name: str
    resource_class: str
    amount: int
    vlan_tag: int | None = None


@dataclass(frozen=True)
class Booking:
    """A reservation of several amounts over ``[start_s, end_s)``."""

    name: str
    project: str
    start_s: int
    end_s: int
    allocations: tuple[BookedAmount, ...]


@dataclass(frozen=True)
class HostView:
    name: str
    inventories: dict[str, Inventory]


@dataclass(frozen=True)
class PortView:
    provider_name: str
    vlans: VlanSet
    tags: tuple[int, ...]
    bandwidth: Inventory


@dataclass
class Ledger:
    """Accepted intervals per ``(provider, class)`` and VLAN tags per port; the overbooking guard."""

    capacities: dict[tuple[str, str], Inventory]
    intervals: dict[tuple[str, str], list[tuple[int, int, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    tags: dict[str, list[tuple[int, int, int]]] = field(default_factory=lambda: defaultdict(list))

    def fits(self, start: int, end: int, allocations: Iterable[BookedAmount]) -> bool:
        """True when every amount obeys its inventory's unit rules and capacity over ``[start, end)``."""
        wanted: dict[tuple[str, str], int] = defaultdict(int)
        for alloc in allocations:
            inventory = self.capacities.get((alloc.provider_name, alloc.resource_class))
            if inventory is None or inventory.amount_problem(alloc.amount) is not None:
                return False
            wanted[(alloc.provider_name, alloc.resource_class)] += alloc.amount
            if alloc.vlan_tag is not None and self.tag_in_use(
                alloc.provider_name, alloc.vlan_tag, start, end
            ):
                return False
        return all(
            peak_usage(self.intervals[key], start, end) + amount <= self.capacities[key].capacity
            for key, amount in wanted.items()
        )

    def tag_in_use(self, port: str, tag: int, start: int, end: int) -> bool:
        return any(t == tag and s < end and start < e for s, e, t in self.tags[port])

    def add(self, booking: Booking) -> None:
        for alloc in booking.allocations:
            key = (alloc.provider_name, alloc.resource_class)
            self.intervals[key].append((booking.start_s, booking.end_s, alloc.amount))
            if alloc.vlan_tag is not None:
                self.tags[alloc.provider_name].append((booking.start_s, booking.end_s, alloc.vlan_tag))


def peak_usage(intervals: Iterable[tuple[int, int, int]], start: int, end: int) -> int:
    """Highest total amount in use at any instant of ``[start, end)``, by a sorted sweep of events.

    Each interval overlapping the window adds ``+amount`` at its (clipped) start and ``-amount`` at its
    (clipped) end; at equal times releases sort first, because intervals are half-open.
    """
    events: list[tuple[int, int]] = []
    for s, e, amount in intervals:
        if s < end and start < e:
            events.append((max(s, start), amount))
            events.append((min(e, end), -amount))
    events.sort()
    peak = current = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    return peak


def synthetic_bookings(
    doc: Topology, *, start_s: int, days: int, seed: int, target_utilisation: float = 0.5
) -> list[Booking]:
    """Bookings over ``days`` days from ``start_s`` that never exceed any capacity (module docstring)."""
    if days < 1:
        raise ValueError("days must be at least 1")
    if not 0.0 <= target_utilisation <= 1.0:
        raise ValueError("target_utilisation must be between 0 and 1")
    rng = random.Random(seed)
    hosts, links, ports = _hosts(doc), _link_capacities(doc), _ports(doc)
    ledger = Ledger(capacities=_capacities(hosts, links, ports))
    horizon_hours = days * 24
    goal = target_utilisation * horizon_hours * sum(_vcpu(h) for h in hosts)
    used = 0.0
    bookings: list[Booking] = []
    failures = attempts = 0
    while used < goal and failures < MAX_CONSECUTIVE_FAILURES and attempts < MAX_ATTEMPTS:
        attempts += 1
        start_h = rng.randrange(horizon_hours)
        end_h = min(horizon_hours, start_h + _duration_hours(rng))
        allocations = _draw_allocations(
            rng, hosts, links, ports, ledger, start_s + start_h * HOUR_S, start_s + end_h * HOUR_S
        )
        booking = Booking(
            name=f"bk-{len(bookings) + 1:06d}",
            project=rng.choice(PROJECTS),
            start_s=start_s + start_h * HOUR_S,
            end_s=start_s + end_h * HOUR_S,
            allocations=allocations,
        )
        if not allocations or not ledger.fits(booking.start_s, booking.end_s, allocations):
            failures += 1
            continue
        failures = 0
        ledger.add(booking)
        bookings.append(booking)
        used += sum(a.amount for a in allocations if a.resource_class == "VCPU") * (end_h - start_h)
    return bookings


def _duration_hours(rng: random.Random) -> int:
    """Mostly short (1-8 h), often a day or two, sometimes up to 5 days."""
    bucket = rng.random()
    if bucket < 0.5:
        return rng.randint(1, 8)
    if bucket < 0.85:
        return rng.randint(9, 48)
    return rng.randint(49, 120)


def _draw_allocations(
    rng: random.Random,
    hosts: list[HostView],
    links: dict[str, Inventory],
    ports: list[PortView],
    ledger: Ledger,
    start: int,
    end: int,
) -> tuple[BookedAmount, ...]:
    kind = rng.random()
    if kind < 0.12 and links:
        return _link_booking(rng, links)
    if kind < 0.2 and ports:
        return _port_booking(rng, rng.choice(ports), ledger, start, end)
    if hosts:
        return _vm_booking(rng, rng.choice(hosts))
    return ()


def _vm_booking(rng: random.Random, host: HostView) -> tuple[BookedAmount, ...]:
    vcpu_cap = _vcpu(host)
    choices = [(c, w) for c, w in zip(VM_CORES, VM_CORE_WEIGHTS, strict=True) if c <= vcpu_cap]
    if not choices:
        return (BookedAmount(host.name, "VCPU", vcpu_cap),) if vcpu_cap else ()
    cores = rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]
    out = [BookedAmount(host.name, "VCPU", cores)]
    factor = rng.choice((0.5, 1.0))
    for rc, unit in (("MEMORY_MB", 1024), ("DISK_GB", 10)):
        if rc in host.inventories:
            per_core = host.inventories[rc].capacity / vcpu_cap
            out.append(BookedAmount(host.name, rc, max(unit, int(cores * per_core * factor) // unit * unit)))
    out.extend(_device_amounts(rng, host))
    return tuple(out)


def _device_amounts(rng: random.Random, host: HostView) -> list[BookedAmount]:
    """Sometimes one device family of the host: a GPU (1-2), an FPGA or a NIC."""
    out: list[BookedAmount] = []
    for family, chance, most in (("GPU_", 0.5, 2), ("FPGA_", 0.4, 1), ("NIC_", 0.15, 1)):
        classes = [rc for rc in host.inventories if rc.startswith(family)]
        if classes and rng.random() < chance:
            rc = rng.choice(classes)
            top = min(most, host.inventories[rc].capacity)
            if top >= 1:
                out.append(BookedAmount(host.name, rc, rng.randint(1, top)))
    return out


def _link_booking(rng: random.Random, links: dict[str, Inventory]) -> tuple[BookedAmount, ...]:
    name = rng.choice(list(links))
    fitting = [g for g in LINK_GBPS if g <= links[name].capacity] or [links[name].capacity]
    return (BookedAmount(name, "BANDWIDTH_GBPS", rng.choice(fitting)),)


def _port_booking(
    rng: random.Random, port: PortView, ledger: Ledger, start: int, end: int
) -> tuple[BookedAmount, ...]:
    tag = _free_tag(rng, port, ledger, start, end)
    if tag is None:
        return ()
    capacity = port.bandwidth.capacity
    gbps = rng.choice([g for g in PORT_GBPS if g <= capacity] or [capacity])
    return (
        BookedAmount(port.provider_name, "BANDWIDTH_GBPS", gbps),
        BookedAmount(port.provider_name, "VLAN", 1, vlan_tag=tag),
    )


def _free_tag(rng: random.Random, port: PortView, ledger: Ledger, start: int, end: int) -> int | None:
    """A tag of the port not booked at any overlapping time, scanning from a random offset."""
    busy = {t for s, e, t in ledger.tags[port.provider_name] if s < end and start < e}
    offset = rng.randrange(len(port.tags))
    for i in range(len(port.tags)):
        tag = port.tags[(offset + i) % len(port.tags)]
        if tag not in busy:
            return tag
    return None


def _vcpu(host: HostView) -> int:
    inventory = host.inventories.get("VCPU")
    return inventory.capacity if inventory else 0


def _hosts(doc: Topology) -> list[HostView]:
    return [
        HostView(node.name, dict(node.inventories))
        for node, _, _ in doc.walk()
        if node.kind == ProviderKind.HOST and node.inventories
    ]


def _link_capacities(doc: Topology) -> dict[str, Inventory]:
    return {link.name: Inventory(total=link.bandwidth_gbps) for link in doc.links}


def _ports(doc: Topology) -> list[PortView]:
    out: list[PortView] = []
    for port in doc.facility_ports:
        vlans = VlanSet.parse(port.vlans)
        name = facility_port_provider_name(port.site, port.name)
        out.append(PortView(name, vlans, tuple(vlans), Inventory(total=port.bandwidth_gbps)))
    return out


def _capacities(
    hosts: list[HostView], links: dict[str, Inventory], ports: list[PortView]
) -> dict[tuple[str, str], Inventory]:
    """The inventory behind every bookable ``(provider, class)`` key."""
    caps: dict[tuple[str, str], Inventory] = {}
    for host in hosts:
        caps.update({(host.name, rc): inv for rc, inv in host.inventories.items()})
    caps.update({(name, "BANDWIDTH_GBPS"): inv for name, inv in links.items()})
    for port in ports:
        caps[(port.provider_name, "BANDWIDTH_GBPS")] = port.bandwidth
        caps[(port.provider_name, "VLAN")] = Inventory(total=len(port.vlans))
    return caps
