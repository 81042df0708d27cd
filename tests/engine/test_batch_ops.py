"""StepTable batch updates, shortening and forgetting the past: after any sequence of them, every query
about times at or after the last drop point answers as a table built fresh from the bookings left
(clipped to start at that point); the batch, one-row and vectorised paths agree."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slotbroker.engine.steprow import row_fit, row_peak
from slotbroker.engine.steps import NONE_T, StepTable

N_ROWS = 3
END = 120  # bookings lie in [0, END); queries reach past it
Booking = tuple[int, int, int, int]  # row, start, end, amount

bookings = st.lists(
    st.builds(
        lambda r, s, d, a: (r, s, s + d, a),
        st.integers(0, N_ROWS - 1),
        st.integers(0, 90),
        st.integers(1, 30),
        st.integers(1, 4),
    ),
    max_size=6,
)
op = st.one_of(
    st.tuples(st.just("add"), bookings),
    st.tuples(st.just("add_many"), bookings),
    st.tuples(st.just("remove_many"), st.lists(st.integers(0, 99), max_size=4)),
    st.tuples(st.just("shorten"), st.tuples(st.integers(0, 99), st.integers(0, 30))),
    st.tuples(st.just("drop_past"), st.integers(0, 15)),
)


def _arrays(items: list[Booking]) -> tuple[np.ndarray, ...]:
    a = np.array(items, dtype=np.int64).reshape(-1, 4)
    return a[:, 0], a[:, 1], a[:, 2], a[:, 3]


def _fresh(items: list[Booking], drop: int) -> StepTable:
    left = [(r, max(s, drop), e, a) for r, s, e, a in items if e > drop]
    return StepTable.build(N_ROWS, *_arrays(left))


def _merged(spans: tuple[np.ndarray, np.ndarray, np.ndarray]) -> list[tuple[int, int, int]]:
    """Blocked spans with touching spans of one row joined (a fresh build may split a step in two)."""
    out: list[tuple[int, int, int]] = []
    for i, a, b in sorted(zip(*(x.tolist() for x in spans), strict=True)):
        if out and out[-1][0] == i and out[-1][2] == a:
            out[-1] = (i, out[-1][1], b)
        else:
            out.append((i, a, b))
    return out


def _answers(t: StepTable, drop: int) -> list[object]:
    rows = np.arange(N_ROWS, dtype=np.int64)
    out: list[object] = []
    for s in range(drop, END + 10, 7):
        for d in (1, 9, 40):
            out.append(t.peak(rows, s, s + d).tolist())
            out.append([int(t.peak(rows[r : r + 1], s, s + d)[0]) for r in range(N_ROWS)])
            out.append(t.peak(rows, np.full(N_ROWS, s), np.full(N_ROWS, s + d)).tolist())
            for thr in (0, 2, 5):
                th = np.full(N_ROWS, thr, dtype=np.int64)
                out.append(t.earliest_fits(rows, np.full(N_ROWS, s), d, th, END).tolist())
                out.append([t.earliest_fit(r, s, d, thr, END) for r in range(N_ROWS)])
                out.append(_merged(t.blocked_spans(rows, s, s + d, th)))
        out.append([t.next_decrease(rows[r : r + 1], s) for r in range(N_ROWS)])
        out.append(t.next_decrease(rows, s))
    return out


@settings(max_examples=150, deadline=None)
@given(base=bookings, ops=st.lists(op, max_size=8), with_grid=st.booleans(), compact=st.booleans())
def test_any_sequence_answers_as_a_fresh_build(
    base: list[Booking], ops: list[tuple[str, Any]], with_grid: bool, compact: bool
) -> None:
    t = StepTable.build(N_ROWS, *_arrays(base))
    if with_grid:
        t.grid()
    live = list(base)
    drop = 0
    for name, arg in ops:
        if name == "add":
            for r, s, e, a in arg:
                t.add(r, s, e, a)
            live += arg
        elif name == "add_many":
            t.add_many(*_arrays(arg))
            live += arg
        elif name == "remove_many" and live:
            picks = sorted({i % len(live) for i in arg})
            gone = [live[i] for i in picks]
            r, s, e, a = _arrays(gone)
            t.add_many(r, s, e, -a)
            live = [b for i, b in enumerate(live) if i not in picks]
        elif name == "shorten" and live:
            i, cut = arg
            r, s, e, a = live[i % len(live)]
            new_end = min(e, max(drop, e - cut))  # a booking added after a drop may end before it
            t.shorten(r, s, e, a, new_end)
            live[i % len(live)] = (r, s, new_end, a)
            live = [b for b in live if b[2] > b[1]]
        elif name == "drop_past":
            drop = max(drop, drop + arg)
            t.drop_past(drop)
            live = [b for b in live if b[2] > drop]  # ended: forgotten
        if compact:
            t.compact()
    assert _answers(t, drop) == _answers(_fresh(live, drop), drop)


@settings(max_examples=150, deadline=None)
@given(items=bookings, signs=st.lists(st.booleans(), max_size=6), compact=st.booleans())
def test_add_many_equals_adds_one_by_one(items: list[Booking], signs: list[bool], compact: bool) -> None:
    """The batch path and the one-allocation path leave the same (minimal) step functions."""
    signed = [
        (r, s, e, a if keep else -a) for (r, s, e, a), keep in zip(items, signs + [True] * 6, strict=False)
    ]
    one, many = StepTable(N_ROWS), StepTable(N_ROWS)
    for r, s, e, a in signed:
        one.add(r, s, e, a)
    many.add_many(*_arrays(signed))
    if compact:
        one.compact()
    for r in range(N_ROWS):
        assert [x.tolist() for x in one.series(r)] == [x.tolist() for x in many.series(r)]


@settings(max_examples=200, deadline=None)
@given(
    items=bookings,
    start=st.integers(0, 130),
    duration=st.integers(1, 40),
    threshold=st.integers(-1, 6),
    latest=st.integers(0, 140),
)
def test_one_row_paths_equal_the_vectorised_paths(
    items: list[Booking], start: int, duration: int, threshold: int, latest: int
) -> None:
    t = StepTable.build(N_ROWS, *_arrays(items))
    for r in range(N_ROWS):
        row = np.array([r], dtype=np.int64)
        ks, ls = t.series(r)
        got = row_fit(ks, ls, 0, start, duration, threshold, latest)
        live = threshold >= 0 and start <= latest
        want = (
            int(
                StepTable._fits_flat(
                    ks, ls, np.zeros(1, np.int64), np.array([start]), duration, np.array([threshold]), latest
                )[0]
            )
            if live
            else int(NONE_T)
        )
        assert got == want
        want_peak = int(t._peak_exact(row, np.array(start), np.array(start + duration))[0])
        assert row_peak(ks, ls, 0, start, start + duration) == want_peak


def test_drop_past_keeps_the_present_and_rebuilds_the_grid() -> None:
    """A year of hourly bookings on a table with a grid: dropping all but the last day leaves the grid
    at one-hour blocks over what is left (it had coarsened), and the present's answers unchanged."""
    n = 24 * 365
    starts = np.arange(n, dtype=np.int64) * 3600
    t = StepTable.build(1, np.zeros(n, np.int64), starts, starts + 5400, np.ones(n, np.int64))
    assert t.grid().bs > 3600
    now = int(starts[-24])
    before = [t.peak(np.zeros(1, np.int64), s, s + 1800).tolist() for s in range(now, now + 86400, 1800)]
    t.drop_past(now)
    assert t.grid().bs == 3600
    after = [t.peak(np.zeros(1, np.int64), s, s + 1800).tolist() for s in range(now, now + 86400, 1800)]
    assert after == before
    assert t.series(0)[0].shape[0] <= 2 * 25


def test_shorten_releases_the_tail_only() -> None:
    t = StepTable(1)
    t.add(0, 10, 50, 3)
    t.shorten(0, 10, 50, 3, 30)
    assert [x.tolist() for x in t.series(0)] == [[10, 30], [3, 0]]
    with pytest.raises(ValueError, match="lengthen"):
        t.shorten(0, 10, 30, 3, 31)
    t.shorten(0, 10, 30, 3, 5)  # before its start: all of it
    assert t.series(0)[0].tolist() == []
