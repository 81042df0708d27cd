"""Engine vs. the brute-force reference on small random worlds."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slotbroker.engine import CalendarIndex, Snapshot, find_slots

from ._reference import check_window, earliest
from .strategies import H, requests, worlds

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(data=st.data(), snap=worlds())
def test_windows_are_feasible_and_earliest(data: st.DataObject, snap: Snapshot) -> None:
    req = data.draw(requests(snap))
    result = find_slots(CalendarIndex(snap), req, explain=False)
    for w in result.windows:
        assert req.range_start_s <= w.start
        assert w.end <= req.latest_end_s
        assert w.end - w.start == req.min_duration_s
        assert check_window(snap, req, w), w
    spans = sorted((w.start, w.end) for w in result.windows)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    ref = earliest(snap, req, H)
    first = min((w.start for w in result.windows), default=None)
    assert first == ref


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), snap=worlds())
def test_duration_ranges_hold_for_whole_window(data: st.DataObject, snap: Snapshot) -> None:
    req = data.draw(requests(snap, fixed=False))
    for w in find_slots(CalendarIndex(snap), req, explain=False).windows:
        assert req.min_duration_s <= w.end - w.start <= req.max_duration_s
        assert check_window(snap, req, w), w


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), snap=worlds())
def test_deterministic(data: st.DataObject, snap: Snapshot) -> None:
    req = data.draw(requests(snap))
    a = find_slots(CalendarIndex(snap), req)
    b = find_slots(CalendarIndex(snap), req)
    index = CalendarIndex(snap)
    c = find_slots(index, req)
    d = find_slots(index, req)
    assert a == b == c == d
