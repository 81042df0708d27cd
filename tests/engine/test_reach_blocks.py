"""The block-grid path of ``free_starts`` (``free_starts_blocks``) against the event path
(``free_starts_exact``): the same free-start intervals for every row, with several tables (classes), rows
held as deltas after the grid was built, windows that start or end inside a block, and tables whose
grids have different block sizes (the per-table path; one block size takes the one-mask path).
The one-mask path's stretches are also held to the per-table ones on random dirty grids."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from slotbroker.engine.stages.free_starts import (
    _clean_runs,
    _stretches_per_table,
    free_starts_blocks,
    free_starts_exact,
)
from slotbroker.engine.steps import StepTable

from .strategies import T0

Q = 900  # events on quarter hours; grid blocks are one hour
ROWS = 4
booking = st.tuples(st.integers(0, ROWS - 1), st.integers(0, 120), st.integers(1, 24), st.integers(1, 4))


FAR = 100 * 96  # quarter hours: a booking this far out makes the grid's blocks two hours


def _table(
    items: list[tuple[int, int, int, int]], late: list[tuple[int, int, int, int]], far: bool = False
) -> StepTable:
    # a long booking on every row keeps the whole test range inside the grid
    base = [(r, -8, 220, 1) for r in range(ROWS)] + ([(r, FAR, 4, 1) for r in range(ROWS)] if far else [])
    a = np.array(base + items, dtype=np.int64)
    t = StepTable.build(ROWS, a[:, 0], T0 + a[:, 1] * Q, T0 + (a[:, 1] + a[:, 2]) * Q, a[:, 3])
    t.grid()
    for r, s, d, amt in late:  # rows changed after the grid was built: deltas, grid updated in place
        t.add(r, T0 + s * Q, T0 + (s + d) * Q, amt)
    return t


def _norm(got: tuple[np.ndarray, np.ndarray, np.ndarray], rows: np.ndarray) -> list[tuple[int, int, int]]:
    o, x, y = got
    return sorted(zip(rows[o].tolist(), x.tolist(), y.tolist(), strict=True))


@settings(max_examples=300, deadline=None)
@given(
    tables=st.lists(
        st.tuples(st.lists(booking, max_size=14), st.lists(booking, max_size=3)), min_size=1, max_size=3
    ),
    thr=st.lists(st.lists(st.integers(0, 6), min_size=ROWS, max_size=ROWS), min_size=3, max_size=3),
    lo=st.integers(0, 100),
    span=st.integers(0, 60),
    d=st.integers(9, 40),  # quarter hours: longer than two blocks
    rows=st.lists(st.integers(0, ROWS - 1), min_size=1, max_size=6),
)
def test_blocks_path_equals_exact_path(
    tables: list[tuple[list[tuple[int, int, int, int]], list[tuple[int, int, int, int]]]],
    thr: list[list[int]],
    lo: int,
    span: int,
    d: int,
    rows: list[int],
) -> None:
    r = np.array(rows, dtype=np.int64)
    specs: list[tuple[StepTable | None, np.ndarray]] = [
        (_table(items, late), np.array(thr[i], dtype=np.int64)[r]) for i, (items, late) in enumerate(tables)
    ]
    start, stop, dur = T0 + lo * Q + 7, T0 + (lo + span) * Q + 7, d * Q + 11  # off the block edges
    got = free_starts_blocks(specs, r, start, stop, dur)
    assert got is not None  # the range lies inside every grid: the blocks path must answer
    assert _norm(got, r) == _norm(free_starts_exact(specs, r, start, stop, dur), r)


def test_blocks_path_declines_short_windows_and_ranges_outside_the_grid() -> None:
    t = _table([(0, 10, 4, 2)], [])
    r = np.arange(ROWS, dtype=np.int64)
    thr = np.ones(ROWS, dtype=np.int64)
    assert free_starts_blocks([(t, thr)], r, T0, T0 + 3600, 2 * 3600) is None  # d <= 2 blocks
    assert free_starts_blocks([(t, thr)], r, T0 - 30 * 86_400, T0, 4 * 3600) is None  # before the grid


@settings(max_examples=200, deadline=None)
@given(
    tables=st.lists(
        st.tuples(st.lists(booking, max_size=14), st.lists(booking, max_size=3)), min_size=2, max_size=2
    ),
    thr=st.lists(st.lists(st.integers(0, 6), min_size=ROWS, max_size=ROWS), min_size=2, max_size=2),
    lo=st.integers(0, 100),
    span=st.integers(0, 60),
    d=st.integers(17, 40),  # quarter hours: longer than two of the coarse table's blocks
    rows=st.lists(st.integers(0, ROWS - 1), min_size=1, max_size=6),
)
def test_blocks_path_with_two_block_sizes_equals_exact_path(
    tables: list[tuple[list[tuple[int, int, int, int]], list[tuple[int, int, int, int]]]],
    thr: list[list[int]],
    lo: int,
    span: int,
    d: int,
    rows: list[int],
) -> None:
    r = np.array(rows, dtype=np.int64)
    fine, coarse = _table(*tables[0]), _table(*tables[1], far=True)
    assert (fine.grid().bs, coarse.grid().bs) == (3600, 7200)
    specs: list[tuple[StepTable | None, np.ndarray]] = [
        (fine, np.array(thr[0], dtype=np.int64)[r]),
        (coarse, np.array(thr[1], dtype=np.int64)[r]),
    ]
    start, stop, dur = T0 + lo * Q + 7, T0 + (lo + span) * Q + 7, d * Q + 11
    got = free_starts_blocks(specs, r, start, stop, dur)
    assert got is not None
    assert _norm(got, r) == _norm(free_starts_exact(specs, r, start, stop, dur), r)


@settings(max_examples=300, deadline=None)
@given(
    masks=st.integers(1, 5).flatmap(
        lambda nb: st.lists(
            st.lists(st.lists(st.booleans(), min_size=nb, max_size=nb), min_size=3, max_size=3),
            min_size=1,
            max_size=3,
        )
    ),
    lo_off=st.integers(0, 3599),
    end_off=st.integers(1, 3600),
)
def test_one_mask_stretches_equal_per_table_stretches(
    masks: list[list[list[bool]]], lo_off: int, end_off: int
) -> None:
    """Runs of blocks clean in every view (the or of the masks) are the non-empty stretches the
    per-table path finds from each view's dirty runs."""
    views = [(T0, 3600, np.array(m, dtype=bool).T) for m in masks]  # (blocks, rows)
    nb = views[0][2].shape[0]
    lo, end = T0 + lo_off, T0 + (nb - 1) * 3600 + end_off
    assume(lo < end)  # a view covers [lo, end): the block of lo to the block of end - 1
    dirty = views[0][2]
    for v in views[1:]:
        dirty = dirty | v[2]
    got = sorted(zip(*(x.tolist() for x in _clean_runs(T0, 3600, dirty, lo, end)), strict=True))
    o, x, y = _stretches_per_table(views, 3, lo, end)
    want = sorted((a, b, c) for a, b, c in zip(o.tolist(), x.tolist(), y.tolist(), strict=True) if b < c)
    assert got == want
