"""``StepTable.add_many`` merges every touched row in one pass and recomputes their block maxima in one
``_block_peaks`` call: it must leave the same step functions *and the same grid* (blocks, extent and
outside rows) as adding the allocations one at a time, and ``_block_peaks`` must equal the one-row
``_row_blocks`` on every row."""

from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from slotbroker.engine.steps import BLOCK_S, STRIDE, StepTable, _block_peaks, _row_blocks

N_ROWS = 5
H = BLOCK_S
Booking = tuple[int, int, int, int]  # row, start, end, amount

# times in hours-ish units so blocks matter; some far out so the grid must widen or leave rows outside
times = st.one_of(st.integers(0, 30 * H), st.integers(0, 30).map(lambda h: h * H), st.integers(0, 6000 * H))
bookings = st.lists(
    st.builds(
        lambda r, s, d, a: (r, s, s + d, a),
        st.integers(0, N_ROWS - 1),
        times,
        st.one_of(st.integers(1, 5 * H), st.integers(1, 4).map(lambda h: h * H)),
        st.integers(1, 4),
    ),
    max_size=12,
)


def _arrays(items: list[Booking]) -> tuple[np.ndarray, ...]:
    a = np.array(items, dtype=np.int64).reshape(-1, 4)
    return a[:, 0], a[:, 1], a[:, 2], a[:, 3]


def _state(t: StepTable) -> tuple[object, ...]:
    g = t.grid()
    series = [[x.tolist() for x in t.series(r)] for r in range(N_ROWS)]
    return series, (g.t0, g.bs, g.nb), g.bmax.tolist(), sorted(g.outside.tolist())


@settings(max_examples=120, deadline=None)
@given(
    base=bookings,
    batches=st.lists(st.tuples(bookings, st.lists(st.integers(0, 99), max_size=4)), min_size=1, max_size=3),
    dirty_first=st.booleans(),
)
# the grid must widen back for row 4, then cannot reach row 2's far booking: which row ends up outside
# depends on the order, so the batch widens in its own order, as adds one at a time do
@example(
    base=[(2, 7866737, 7873937, 3)],
    batches=[([(4, 6054041, 6061241, 2), (2, 13829308, 13847252, 3)], [])],
    dirty_first=False,
)
def test_batch_leaves_the_grid_of_adds_one_by_one(
    base: list[Booking], batches: list[tuple[list[Booking], list[int]]], dirty_first: bool
) -> None:
    """Each batch adds some bookings and removes some booked ones (usage never goes negative, as in
    the calendar index); the grid may have to widen or leave a far row outside."""
    one = StepTable.build(N_ROWS, *_arrays(base))
    many = StepTable.build(N_ROWS, *_arrays(base))
    one.grid()
    many.grid()
    live = list(base)
    if dirty_first:  # a row already dirty when the batch comes (its events read from the delta)
        one.add(0, 3 * H, 4 * H, 1)
        many.add(0, 3 * H, 4 * H, 1)
    for added, picks in batches:
        gone = [live[i % len(live)] for i in sorted({i % len(live) for i in picks})] if live else []
        for b in gone:
            live.remove(b)
        batch = added + [(r, s, e, -a) for r, s, e, a in gone]
        for r, s, e, a in batch:
            one.add(r, s, e, a)
        many.add_many(*_arrays(batch))
        live += added
        assert _state(many) == _state(one)


@settings(max_examples=150, deadline=None)
@given(items=bookings, t0=st.integers(0, 40).map(lambda h: h * H), nb=st.integers(1, 30))
def test_block_peaks_equals_row_blocks_on_every_row(items: list[Booking], t0: int, nb: int) -> None:
    t = StepTable.build(N_ROWS, *_arrays(items))
    keys, levels = t._keys, t._levels
    rows = keys // STRIDE
    got = _block_peaks(rows, keys - rows * STRIDE, levels, N_ROWS, t0, H, nb)
    for r in range(N_ROWS):
        ks, ls = t.series(r)
        assert got[:, r].tolist() == _row_blocks(ks, ls, t0, H, nb).tolist()


@settings(max_examples=100, deadline=None)
@given(items=bookings, dirty=bookings, rows=st.sets(st.integers(0, N_ROWS - 1)))
def test_rows_max_equals_row_max(items: list[Booking], dirty: list[Booking], rows: set[int]) -> None:
    """Rows from the flat arrays, dirty rows and rows without events, in one call."""
    t = StepTable.build(N_ROWS, *_arrays(items))
    for r, s, e, a in dirty:
        t.add(r, s, e, a)
    asked = np.array(sorted(rows), dtype=np.int64)
    assert t.rows_max(asked).tolist() == [t.row_max(r) for r in sorted(rows)]


def test_a_batch_inside_a_wide_grid_recomputes_its_blocks_only_and_exactly() -> None:
    """A batch a few hours long in a grid of weeks: the blocks it meets carry the level in from a
    booking that began long before (the edge blocks half inside it), the others keep their values; the
    grid equals one computed afresh over every block."""
    t = StepTable.build(N_ROWS, *_arrays([(1, 0, 500 * H, 2), (3, 10 * H, 400 * H, 1)]))
    g = t.grid()
    before = g.bmax.copy()
    t.add_many(*_arrays([(1, 200 * H + 1800, 203 * H + 7, 3), (3, 300 * H, 301 * H, -1)]))
    t.compact()
    rows = t._keys // STRIDE
    fresh = _block_peaks(rows, t._keys - rows * STRIDE, t._levels, N_ROWS, g.t0, g.bs, g.nb)
    assert t.grid() is g
    assert g.bmax.tolist() == fresh.tolist()
    changed = sorted({int(b) for b in np.flatnonzero((g.bmax != before).any(axis=1))})
    assert changed == [200 - g.t0 // H, 201 - g.t0 // H, 202 - g.t0 // H, 203 - g.t0 // H, 300 - g.t0 // H]
