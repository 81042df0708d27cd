"""VLAN tags: the first start is the true earliest even where the port's count of booked tags does not
move. Both cases were wrong answers before: a named tag that frees at the instant another tag is taken
(the count stays level, so the search never tried that instant), and a port whose tag is booked twice
(an overbooked port: the count of VLAN rows exceeds the tags in use, so the skip went too far; found by
``test_windows_are_feasible_and_earliest``)."""

from __future__ import annotations

from typing import Any

from slotbroker.domain.request import parse_request
from slotbroker.domain.vlans import VlanSet
from slotbroker.engine import (
    AllocationSnap,
    CalendarIndex,
    HostSnap,
    InventorySnap,
    PortSnap,
    SiteSnap,
    Snapshot,
    find_slots,
)
from slotbroker.engine.snapshot import AllocationTable

from ._reference import earliest
from .strategies import T0, H, iso


def _world(tags: list[tuple[int, int, int]]) -> Snapshot:
    """One host and port ``fp`` (tags 100-102) with bookings (tag, start hour, end hour)."""
    host = HostSnap(1, "h0", "S0", inventories={"VCPU": InventorySnap(2)})
    rows = [AllocationSnap(200, "VLAN", 1, T0 + a * H, T0 + b * H, tag) for tag, a, b in tags]
    port = PortSnap(200, "S0", "fp", VlanSet(((100, 102),)), 10)
    return Snapshot((host,), (SiteSnap("S0"),), (), (port,), AllocationTable.from_rows(rows))


def _first(world: Snapshot, **port: Any) -> tuple[int | None, int | None]:
    req = parse_request(
        {
            "components": [{"name": "c0", "resources": {"VCPU": 1}}],
            "facility_ports": [{"site": "S0", "port": "fp", "component": "c0", **port}],
            "earliest_start": iso(T0),
            "latest_end": iso(T0 + 8 * H),
            "duration": H,
            "limit": 1,
        }
    )
    windows = find_slots(CalendarIndex(world), req).windows
    return (windows[0].start if windows else None), earliest(world, req, H)


def test_a_named_tag_freed_as_another_is_taken_is_found_at_once() -> None:
    world = _world(
        [(100, 0, 1), (101, 1, 3)]
    )  # at hour 1: 100 frees, 101 is taken, two busy before and after
    assert _first(world, vlans=[100]) == (T0 + H, T0 + H)
    assert _first(world, vlans=[102]) == (T0, T0)


def test_a_tag_booked_twice_counts_once() -> None:
    # tag 100 twice until hour 3, tag 101 until hour 2: two tags free from hour 2, though three rows
    # stand until hour 2 and two until hour 3
    world = _world([(100, 0, 3), (100, 0, 3), (101, 0, 2)])
    assert _first(world, vlan_count=2) == (T0 + 2 * H, T0 + 2 * H)
    assert _first(world, vlan_count=3) == (T0 + 3 * H, T0 + 3 * H)
