"""A search stopped by its time budget (``find_slots(out_of_time=...)``): what it found is what the
whole search finds up to where it stopped, it says where that was, and it explains nothing (it proved
nothing about the rest)."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from slotbroker.engine import CalendarIndex, Snapshot, find_slots

from ._reference import check_window
from .strategies import requests, worlds


def after(calls: int) -> Callable[[], bool]:
    """Out of time from the ``calls``-th question on (a deterministic stand-in for a clock)."""
    asked = [0]

    def out_of_time() -> bool:
        asked[0] += 1
        return asked[0] >= calls

    return out_of_time


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), snap=worlds(), calls=st.integers(1, 6))
def test_a_stopped_search_is_a_prefix_of_the_whole_one(
    data: st.DataObject, snap: Snapshot, calls: int
) -> None:
    req = data.draw(requests(snap)).model_copy(update={"limit": 6})  # more windows: longer searches
    index = CalendarIndex(snap)
    whole = find_slots(index, req, explain=False)
    part = find_slots(index, req, explain=True, out_of_time=after(calls))
    assert whole.searched_until is None
    for w in part.windows:
        assert check_window(snap, req, w), w
    event("stopped" if part.searched_until is not None else "finished")
    if part.searched_until is None:  # it finished: the same answer
        assert [w.start for w in part.windows] == [w.start for w in whole.windows]
        return
    assert part.explanation is None
    assert part.candidates_tried == calls  # asked before every candidate but the first: never zero
    stop = part.searched_until
    assert req.range_start_s <= stop <= req.latest_start_s
    assert all(w.start < stop for w in part.windows)
    assert sorted(w.start for w in part.windows) == sorted(w.start for w in whole.windows if w.start < stop)
