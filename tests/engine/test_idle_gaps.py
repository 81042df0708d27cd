"""``rankers.idle_gaps`` reads every candidate row's neighbours in a few searches
(``StepTable.neighbours``); it must equal the per-row reading it replaced, kept here as the reference:
each row's events from ``series``, then a search for the last event at or before the window's start
and one for the first at or after its end. Tables are random: built rows in the flat arrays, rows
changed since (dirty, overriding them), rows with no events, windows inside, between and beyond the
events, and range starts on either side of them."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slotbroker.engine.calendar import CalendarIndex
from slotbroker.engine.plan import Plan
from slotbroker.engine.stages.rankers import NO_NEIGHBOUR, idle_gaps
from slotbroker.engine.steps import HORIZON, StepTable

I64 = npt.NDArray[np.int64]
N_ROWS = 6


def reference_idle_gaps(index: CalendarIndex, plan: Plan, rows: I64, s: int, e: int) -> I64:
    """The per-row reading (what ``idle_gaps`` computed before it read all rows at once)."""
    out = np.zeros(rows.shape[0], dtype=np.int64)
    for cls in plan.classes:
        table = index.host.get(cls)
        for i, row in enumerate(rows.tolist()):
            if table is None:
                out[i] += NO_NEIGHBOUR
                continue
            times, _ = table.series(row)
            k = int(np.searchsorted(times, s, side="right"))
            before = s - max(int(times[k - 1]) if k else plan.range_start, plan.range_start)
            j = int(np.searchsorted(times, e, side="left"))
            after = int(times[j]) - e if j < times.shape[0] else NO_NEIGHBOUR
            out[i] += max(before, 0) + after
    return out


bookings = st.lists(
    st.tuples(st.integers(0, N_ROWS - 2), st.integers(0, 40), st.integers(1, 12), st.integers(1, 3)),
    max_size=14,
)  # the last row never gets a booking


@st.composite
def tables(draw: st.DrawFn) -> StepTable:
    built = draw(bookings)
    arr = np.array(built, dtype=np.int64).reshape(-1, 4)
    table = StepTable.build(N_ROWS, arr[:, 0], arr[:, 1], arr[:, 1] + arr[:, 2], arr[:, 3])
    for row, start, length, amount in draw(bookings):  # dirty rows, over the flat arrays
        table.add(row, start, start + length, amount)
    remove: bool = draw(st.booleans())
    if built and remove:  # a removal: a row's events can change or vanish
        row, start, length, amount = built[0]
        table.add(row, start, start + length, -amount)
    merge: bool = draw(st.booleans())
    if merge:
        table.compact()
    return table


windows = st.tuples(st.integers(-5, 60), st.integers(1, 15), st.integers(-5, 60))
rows_asked = st.lists(st.integers(0, N_ROWS - 1), min_size=0, max_size=8)


def _world(table: StepTable, classes: tuple[str, ...], range_start: int) -> tuple[CalendarIndex, Plan]:
    index = cast(CalendarIndex, SimpleNamespace(host={"VCPU": table}))
    return index, cast(Plan, SimpleNamespace(classes=classes, range_start=range_start))


@settings(max_examples=300, deadline=None)
@given(tables(), windows, rows_asked, st.sampled_from([("VCPU",), ("VCPU", "GPU_A30"), ("GPU_A30",)]))
def test_idle_gaps_equal_the_per_row_reading(
    table: StepTable, window: tuple[int, int, int], rows: list[int], classes: tuple[str, ...]
) -> None:
    s, length, range_start = window
    index, plan = _world(table, classes, range_start)
    asked = np.array(rows, dtype=np.int64)
    got = idle_gaps(index, plan, asked, s, s + length)
    assert got.tolist() == reference_idle_gaps(index, plan, asked, s, s + length).tolist()


@settings(max_examples=300, deadline=None)
@given(tables(), windows, rows_asked)
def test_neighbours_are_each_rows_last_event_before_and_first_after(
    table: StepTable, window: tuple[int, int, int], rows: list[int]
) -> None:
    s, length, _ = window
    e = s + length
    prev, nxt = table.neighbours(np.array(rows, dtype=np.int64), s, e)
    for i, row in enumerate(rows):
        times = table.series(row)[0].tolist()
        assert prev[i] == max((t for t in times if t <= s), default=-1)
        assert nxt[i] == min((t for t in times if t >= e), default=-1)


def test_a_window_that_fills_a_hole_exactly_has_no_gap() -> None:
    table = StepTable.build(
        2, np.array([0, 0]), np.array([0, 20]), np.array([10, 30]), np.array([1, 1], dtype=np.int64)
    )
    index, plan = _world(table, ("VCPU",), 0)
    got = idle_gaps(index, plan, np.array([0, 1]), 10, 20)
    assert got.tolist() == [0, 10 + NO_NEIGHBOUR]


@pytest.mark.parametrize(("s", "e"), [(-20, -10), (HORIZON + 5, HORIZON + 9), (HORIZON - 3, HORIZON + 2)])
def test_windows_beyond_the_times_a_table_holds_read_only_their_own_rows_events(s: int, e: int) -> None:
    """Row 0's events end at the horizon, row 1's begin at 0, row 2 has none: a window before time 0
    or past the horizon must not read a neighbouring row's events (each row's events are a slice of
    one flat array)."""
    rows = np.array([0, 1, 0], dtype=np.int64)
    start = np.array([HORIZON - 10, 0, 5], dtype=np.int64)
    table = StepTable.build(3, rows, start, start + 5, np.ones(3, dtype=np.int64))
    table.add(0, HORIZON - 1, HORIZON + 50, 1)  # clipped to the horizon
    for range_start in (-30, 0):
        index, plan = _world(table, ("VCPU",), range_start)
        asked = np.array([0, 1, 2, 1, 0], dtype=np.int64)
        got = idle_gaps(index, plan, asked, s, e)
        assert got.tolist() == reference_idle_gaps(index, plan, asked, s, e).tolist()
        table.compact()  # the same once the dirty row is merged into the flat arrays
        got = idle_gaps(index, plan, asked, s, e)
        assert got.tolist() == reference_idle_gaps(index, plan, asked, s, e).tolist()
