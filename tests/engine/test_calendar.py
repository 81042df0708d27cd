"""Incremental index updates equal a rebuild; the calendar view reports peaks, not sums."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slotbroker.domain.request import parse_request
from slotbroker.engine import (
    AllocationSnap,
    AllocationTable,
    Bucket,
    CalendarIndex,
    HostSnap,
    InventorySnap,
    LinkSnap,
    Reason,
    SiteSnap,
    Snapshot,
    calendar_view,
    find_slots,
)
from slotbroker.engine.steps import StepTable

H = 3600
HOSTS = (
    HostSnap(1, "h1", "A", inventories={"VCPU": InventorySnap(8)}),
    HostSnap(2, "h2", "B", inventories={"VCPU": InventorySnap(8)}),
)
SITES = (SiteSnap("A"), SiteSnap("B"))
LINKS = (LinkSnap(10, "AB", "A", "B", 10, 1.0),)


def snap(allocs: list[AllocationSnap]) -> Snapshot:
    return Snapshot(HOSTS, SITES, LINKS, (), AllocationTable.from_rows(allocs))


allocs_st = st.lists(
    st.builds(
        lambda p, a, s, d: AllocationSnap(
            p, "BANDWIDTH_GBPS" if p == 10 else "VCPU", a, s * 60, (s + d) * 60
        ),
        st.sampled_from([1, 2, 10]),
        st.integers(1, 4),
        st.integers(0, 100),
        st.integers(1, 50),
    ),
    max_size=25,
)


def probe(index: CalendarIndex) -> list[int]:
    rows = np.array([0, 1], dtype=np.int64)
    out: list[int] = []
    for s in range(0, 160 * 60, 7 * 60):
        for d in (60, 13 * 60, 40 * 60):
            out += index.host_free("VCPU", rows, s, s + d).tolist()
            out += index.site_free_bound("VCPU", rows, s, s + d).tolist()
            out += index.link_free(np.array([0], dtype=np.int64), s, s + d).tolist()
    return out


@settings(max_examples=60, deadline=None)
@given(base=allocs_st, extra=allocs_st, data=st.data())
def test_incremental_equals_rebuild(
    base: list[AllocationSnap], extra: list[AllocationSnap], data: st.DataObject
) -> None:
    index = CalendarIndex(snap(base), generation=1)
    for a in extra:
        index.add(a)
    gone = data.draw(st.lists(st.sampled_from(base), unique_by=id, max_size=len(base))) if base else []
    for a in gone:
        index.remove(a)
    kept = [a for a in base if not any(a is g for g in gone)] + extra
    assert probe(index) == probe(CalendarIndex(snap(kept)))
    assert index.generation == 1


def test_step_table_peak_and_next_decrease() -> None:
    t = StepTable.build(
        2, np.array([0, 0, 1]), np.array([10, 20, 5]), np.array([30, 40, 6]), np.array([2, 3, 7])
    )
    assert t.peak(np.array([0, 1]), 0, 100).tolist() == [5, 7]
    assert t.peak(np.array([0, 0]), np.array([0, 30]), np.array([10, 40])).tolist() == [0, 3]
    assert t.next_decrease(np.array([0]), 10) == 30
    assert t.next_decrease(np.array([0, 1]), 0) == 6
    assert t.earliest_fit(0, 0, 10, 2, 100) == 0
    assert t.earliest_fit(0, 5, 10, 2, 100) == 5
    assert t.earliest_fit(0, 12, 10, 2, 100) == 40
    assert t.earliest_fit(0, 12, 10, 3, 100) == 30
    assert t.earliest_fit(0, 5, 10, 1, 100) == 40
    assert t.earliest_fit(0, 5, 10, 1, 39) is None


def test_view_uses_peak_not_sum() -> None:
    # two 1-core bookings one after the other inside the same hour: peak 1, not 2
    allocs = [
        AllocationSnap(1, "VCPU", 1, 0, 1800),
        AllocationSnap(1, "VCPU", 1, 1800, 3600),
        AllocationSnap(1, "VCPU", 2, H, H + 60),
        AllocationSnap(1, "VCPU", 3, H + 30, 2 * H),
        AllocationSnap(2, "VCPU", 4, 0, H),
    ]
    view = calendar_view(CalendarIndex(snap(allocs)), 0, 3 * H, Bucket.HOUR)
    rows = {(r.kind, r.name, r.resource_class): r for r in view.rows}
    h1 = rows[("host", "h1", "VCPU")]
    assert h1.used == (1, 5, 0)
    assert h1.free == (7, 3, 8)
    assert h1.capacity == 8
    assert rows[("site", "B", "VCPU")].used == (4, 0, 0)
    assert rows[("link", "AB", "BANDWIDTH_GBPS")].used == (0, 0, 0)
    day = calendar_view(CalendarIndex(snap(allocs)), 0, 3 * H, Bucket.DAY)
    assert {(r.kind, r.name): r.used for r in day.rows}[("host", "h1")] == (5,)
    assert view.starts == (0, H, 2 * H)


@pytest.mark.parametrize(
    ("resources", "reason", "blocking"),
    [
        ({"GPU_A30": 7, "VCPU": 1}, Reason.NO_INVENTORY, "GPU_A30"),  # no host has 7: the GPU class blocks
        ({"VCPU": 9}, Reason.UNIT_RULE, "VCPU"),  # over every host's capacity
        ({"FPGA_U280": 1}, Reason.NO_INVENTORY, "FPGA_U280"),  # nobody has one
    ],
)
def test_a_request_no_host_can_ever_hold_names_the_class(
    resources: dict[str, int], reason: Reason, blocking: str
) -> None:
    hosts = (
        HostSnap(1, "h1", "S", inventories={"VCPU": InventorySnap(8), "GPU_A30": InventorySnap(2)}),
        HostSnap(2, "h2", "S", inventories={"VCPU": InventorySnap(8)}),
    )
    index = CalendarIndex(Snapshot(hosts, (SiteSnap("S"),)))
    request = parse_request(
        {
            "components": [{"name": "c", "resources": resources}],
            "earliest_start": "2030-01-01T00:00:00Z",
            "latest_end": "2030-01-02T00:00:00Z",
            "duration": 3600,
        }
    )
    result = find_slots(index, request)
    assert result.windows == ()
    assert result.explanation is not None
    (blocker,) = result.explanation.blockers
    assert (blocker.reason, blocker.component, blocker.resource_class) == (reason, "c", blocking)
