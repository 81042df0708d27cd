"""A zero amount takes nothing: a facility port asking 0 Gbps reaches its site over a link whose bookings
exceed its capacity (an operator lowered it below what was booked), as the reference in ``_reference``
says. Found by ``test_search_with_small_reach_chunks_stays_earliest``: the routing refused such a link
even for 0 Gbps, so the first window came an hour late."""

from __future__ import annotations

from typing import Any

from slotbroker.domain.request import parse_request
from slotbroker.domain.vlans import VlanSet
from slotbroker.engine import (
    AllocationSnap,
    CalendarIndex,
    HostSnap,
    InventorySnap,
    LinkSnap,
    PortSnap,
    SiteSnap,
    Snapshot,
    find_slots,
)
from slotbroker.engine.snapshot import AllocationTable

from ._reference import earliest
from .strategies import T0, H, iso

LINK = 100


def _world() -> Snapshot:
    gpu = HostSnap(1, "h0", "S0", inventories={"VCPU": InventorySnap(2), "GPU_A30": InventorySnap(1)})
    # two bookings of 1 Gbps on a 1 Gbps link for the first hour: 1 Gbps over its capacity
    over = [AllocationSnap(LINK, "BANDWIDTH_GBPS", 1, T0, T0 + H) for _ in range(2)]
    return Snapshot(
        (gpu,),
        (SiteSnap("S0"), SiteSnap("S1")),
        (LinkSnap(LINK, "L0", "S0", "S1", 1, 1.0),),
        (PortSnap(200, "S1", "fp", VlanSet(((100, 102),)), 10),),
        AllocationTable.from_rows(over),
    )


def _request(gbps: int, **more: Any) -> Any:
    return parse_request(
        {
            "components": [{"name": "c0", "resources": {"VCPU": 1, "GPU_A30": 1}}],
            "facility_ports": [{"site": "S1", "port": "fp", "component": "c0", "bandwidth_gbps": gbps}],
            "earliest_start": iso(T0),
            "latest_end": iso(T0 + 6 * H),
            "duration": H,
            "limit": 1,
            **more,
        }
    )


def test_a_port_asking_no_bandwidth_crosses_an_overbooked_link() -> None:
    world = _world()
    req = _request(0)
    [window] = find_slots(CalendarIndex(world), req).windows
    assert window.start == T0 == earliest(world, req, H)
    assert [p.links for p in window.ports] == [("L0",)]


def test_a_port_asking_bandwidth_waits_for_the_link() -> None:
    world = _world()
    req = _request(1)
    [window] = find_slots(CalendarIndex(world), req).windows
    assert window.start == T0 + H == earliest(world, req, H)


def test_a_stretched_window_keeps_the_zero_bandwidth_route() -> None:
    """A duration range stretches the window with ``verify.holds``, which reads the route's links too."""
    world = _world()
    req = _request(0, duration=None, min_duration=H, max_duration=4 * H)
    [window] = find_slots(CalendarIndex(world), req).windows
    assert (window.start, window.end) == (T0, T0 + 4 * H)
