"""A request that passes validation never makes the engine raise, whatever the index holds.

Regressions first (empty components, links or ports only, bookings outside the tables' old time
range), then the property over arbitrary valid requests and stored bookings, checked against the
brute-force reference wherever it can answer in time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from slotbroker.domain.errors import ValidationFailed
from slotbroker.domain.limits import TIME_MAX_S
from slotbroker.domain.request import SlotRequest, parse_request
from slotbroker.domain.vlans import VlanSet
from slotbroker.engine import (
    AllocationSnap,
    AllocationTable,
    CalendarIndex,
    HostSnap,
    InventorySnap,
    LinkSnap,
    PortSnap,
    SiteSnap,
    Snapshot,
    find_slots,
)
from slotbroker.engine.steps import HORIZON, StepTable

from ._reference import check_window, earliest
from .strategies import EPOCH_END, T0, H, iso, wild_documents, wild_worlds

YEAR_1 = -62_135_596_800  # 0001-01-01T00:00:00Z
YEAR_2600 = int(datetime(2600, 1, 1, tzinfo=UTC).timestamp())


def two_sites(allocs: list[AllocationSnap] = ()) -> Snapshot:  # type: ignore[assignment]
    return Snapshot(
        hosts=(
            HostSnap(1, "h0", "S0", inventories={"VCPU": InventorySnap(4)}),
            HostSnap(2, "h1", "S1", inventories={"VCPU": InventorySnap(4)}),
        ),
        sites=(SiteSnap("S0"), SiteSnap("S1"), SiteSnap("NOHOSTS")),
        links=(LinkSnap(10, "L0", "S0", "S1", 10, 1.0),),
        ports=(PortSnap(20, "S1", "fp", VlanSet.parse("100-102"), 10),),
        allocations=AllocationTable.from_rows(allocs),
    )


def request(start: int = T0, hours: int = 10, **doc: Any) -> SlotRequest:
    return parse_request(
        {"earliest_start": iso(start), "latest_end": iso(start + hours * H), "duration": H, **doc}
    )


# -- empty components ------------------------------------------------------------------------------------


def test_an_empty_component_pinned_to_a_site_takes_a_host_there_and_no_capacity() -> None:
    full = AllocationSnap(1, "VCPU", 4, T0, T0 + 100 * H)  # h0 fully held: an anchor still lands on it
    res = find_slots(CalendarIndex(two_sites([full])), request(components=[{"name": "a", "site": "S0"}]))
    assert [w.placement for w in res.windows[:1]] == [{"a": ["h0"]}]
    assert res.windows[0].start == T0


def test_a_link_between_two_anchors_is_routed() -> None:
    req = request(
        components=[{"name": "a", "site": "S0"}, {"name": "b", "site": "S1"}],
        links=[{"a": "a", "b": "b", "bandwidth_gbps": 10}],
    )
    busy = AllocationSnap(10, "BANDWIDTH_GBPS", 1, T0, T0 + 2 * H)
    w = find_slots(CalendarIndex(two_sites([busy])), req).windows[0]
    assert (w.start, w.placement, w.routes[0].links) == (T0 + 2 * H, {"a": ["h0"], "b": ["h1"]}, ("L0",))


def test_a_facility_port_on_an_anchor_gets_its_tags() -> None:
    req = request(
        components=[{"name": "a", "site": "S1", "count": 3}],
        facility_ports=[{"site": "S1", "port": "fp", "component": "a", "vlan_count": 2}],
    )
    w = find_slots(CalendarIndex(two_sites()), req).windows[0]
    assert (w.placement, w.ports[0].vlans) == ({"a": ["h1", "h1", "h1"]}, (100, 101))


def test_an_anchor_at_a_site_without_hosts_is_explained_not_raised() -> None:
    res = find_slots(CalendarIndex(two_sites()), request(components=[{"name": "a", "site": "NOHOSTS"}]))
    assert res.windows == ()
    assert res.explanation is not None
    assert res.explanation.blockers


# -- bookings outside any request's reach -----------------------------------------------------------------


def test_bookings_from_year_1_to_2600_or_9999_hold_the_host_as_far_as_asked() -> None:
    """Requests end by TIME_MAX_S (domain/limits.py); stored bookings may reach far past it and still
    hold their host through every time a request can name (the clipping past it: the next test)."""
    pinned = [{"name": "a", "resources": {"VCPU": 1}, "site": "S0"}]
    for start, end in ((T0, YEAR_2600), (YEAR_1, YEAR_2600), (YEAR_1, EPOCH_END), (T0, 2**62)):
        index = CalendarIndex(two_sites([AllocationSnap(1, "VCPU", 4, start, end)]))
        comp = [{"name": "a", "resources": {"VCPU": 1}}]
        assert {w.placement["a"][0] for w in find_slots(index, request(components=comp)).windows} == {"h1"}
        assert find_slots(index, request(TIME_MAX_S - 10 * H, components=pinned)).windows == ()
    ends_in_range = AllocationSnap(1, "VCPU", 4, YEAR_1, TIME_MAX_S - 5 * H)
    index = CalendarIndex(two_sites([ends_in_range]))
    res = find_slots(index, request(TIME_MAX_S - 10 * H, components=pinned))
    assert res.windows[0].start == TIME_MAX_S - 5 * H


def test_step_table_clips_what_it_cannot_hold_the_same_way_when_built_or_added() -> None:
    times = [(YEAR_1, T0), (T0, YEAR_2600), (YEAR_1, 2**62), (2**62, 2**63 - 1), (-(2**62), -1)]
    rows = np.zeros(len(times), dtype=np.int64)
    s, e = (np.array(x, dtype=np.int64) for x in zip(*times, strict=True))
    built = StepTable.build(1, rows, s, e, np.ones(len(times), dtype=np.int64))
    added = StepTable(1)
    for a, b in times:
        added.add(0, a, b, 1)
    probes = [0, T0 - 1, T0, YEAR_2600 - 1, YEAR_2600, EPOCH_END, HORIZON - 1]
    row = np.zeros(1, dtype=np.int64)
    for table in (built, added):
        assert [int(table.level_at(row, t)[0]) for t in probes] == [2, 2, 2, 2, 1, 1, 1]
        assert table.series(0)[0].max() == HORIZON  # nothing reaches into another row's keys


# -- the property -------------------------------------------------------------------------------------------


def _reference_can_answer(snap: Snapshot, req: SlotRequest) -> bool:
    """The brute force enumerates hosts^instances placements at every hour of the range."""
    return (
        req.instances <= 3
        and req.latest_end_s - req.range_start_s <= 30 * H
        and req.range_start_s % H == 0
        and req.min_duration_s % H == 0
        and len(snap.hosts) <= 5
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), snap=wild_worlds())
def test_valid_requests_never_make_the_engine_raise(data: st.DataObject, snap: Snapshot) -> None:
    doc = data.draw(wild_documents(snap))
    refused: ValidationFailed | None = None
    try:
        req = parse_request(doc)
    except ValidationFailed as exc:
        refused = exc
    if refused is not None:  # invalid documents are refused with pointers, never crash the parser
        event("invalid")
        assert refused.errors
        assert all(e.pointer.startswith("/") or e.pointer == "" for e in refused.errors)
        return
    result = find_slots(CalendarIndex(snap), req, explain=data.draw(st.booleans()))
    assert len(result.windows) <= req.limit
    for w in result.windows:
        assert req.range_start_s <= w.start <= req.latest_start_s
        assert req.min_duration_s <= w.end - w.start <= req.max_duration_s
        assert w.end <= min(req.latest_end_s, EPOCH_END)
        assert check_window(snap, req, w), w
    if result.explanation is not None and result.explanation.earliest_after_range is not None:
        assert result.explanation.earliest_after_range <= EPOCH_END
    event(f"windows: {min(len(result.windows), 1)}")
    if _reference_can_answer(snap, req):
        event("compared with the reference")
        first = min((w.start for w in result.windows), default=None)
        assert first == earliest(snap, req, H)


def test_huge_capacities_sum_exactly_at_a_site() -> None:
    """Site bounds add host capacities as integers: in floats 3 x (2**53 - 1) rounds down by one and
    the site summary hid a fit; a sum past int64 saturates instead of wrapping negative."""
    for cap, amount, want in ((2**53 - 1, 2**53 - 1, ["h1", "h2", "h3"]), (2**62, 2**53, ["h1"] * 3)):
        hosts = tuple(HostSnap(i, f"h{i}", "S", inventories={"VCPU": InventorySnap(cap)}) for i in (1, 2, 3))
        index = CalendarIndex(Snapshot(hosts, (SiteSnap("S"),)))
        comp = {"name": "a", "count": 3, "resources": {"VCPU": amount}}
        res = find_slots(index, request(components=[comp]))
        assert len(res.windows) == 5
        assert sorted(res.windows[0].placement["a"]) == want


def test_a_range_past_the_supported_times_is_refused_before_the_engine() -> None:
    """A range running toward 9999-12-31 (start_within plus a duration) once reached the engine and
    answered windows ending in year 10000; it is now refused at its own field."""
    free = [{"name": "a", "resources": {"VCPU": 1}}]
    with pytest.raises(ValidationFailed) as caught:
        parse_request({"components": free, "start_within": "9999-12-31T20:00:00Z/PT3H", "duration": 7200})
    assert [e.detail.split(":")[0] for e in caught.value.errors] == ["start_within"]
