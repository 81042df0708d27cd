"""StepTable mechanisms: the block grid, the delta overlay (== rebuild) and vectorised earliest fits;
host-level skip-ahead never skips a feasible start."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from slotbroker.engine import CalendarIndex, Snapshot
from slotbroker.engine.plan import compile_plan
from slotbroker.engine.search import Attempt, try_start
from slotbroker.engine.stages.select import host_level_bound
from slotbroker.engine.steps import NONE_T, StepTable

from ._reference import feasible_at
from .strategies import T0, H, requests, worlds

N_ROWS = 3
interval = st.tuples(
    st.integers(0, N_ROWS - 1),  # row
    st.integers(0, 40),  # start, in quarter hours from T0
    st.integers(1, 16),  # length, in quarter hours
    st.integers(1, 5),  # amount
)


def _build(items: list[tuple[int, int, int, int]]) -> StepTable:
    a = np.array(items, dtype=np.int64).reshape(-1, 4)
    q = 900
    return StepTable.build(N_ROWS, a[:, 0], T0 + a[:, 1] * q, T0 + (a[:, 1] + a[:, 2]) * q, a[:, 3])


def _level(items: list[tuple[int, int, int, int]], row: int, t: int) -> int:
    return sum(amt for r, s, d, amt in items if r == row and T0 + s * 900 <= t < T0 + (s + d) * 900)


def _brute_peak(items: list[tuple[int, int, int, int]], row: int, s: int, e: int) -> int:
    pts = {s} | {T0 + x * 900 for _, a, d, _ in items for x in (a, a + d) if s < T0 + x * 900 < e}
    return max(_level(items, row, t) for t in pts)


queries = st.lists(st.tuples(st.integers(-8, 70), st.integers(1, 40)), min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(items=st.lists(interval, max_size=12), qs=queries, step=st.sampled_from([900, 450, 3600]))
def test_grid_peak_is_exact(
    items: list[tuple[int, int, int, int]], qs: list[tuple[int, int]], step: int
) -> None:
    t = _build(items)
    rows = np.arange(N_ROWS, dtype=np.int64)
    for a, d in qs:
        s, e = T0 + a * step, T0 + (a + d) * step
        assert t.peak(rows, s, e).tolist() == [_brute_peak(items, r, s, e) for r in range(N_ROWS)]


@settings(max_examples=150, deadline=None)
@given(
    base=st.lists(interval, max_size=10),
    extra=st.lists(interval, max_size=10),
    data=st.data(),
    compact_every=st.sampled_from([1, 2, 100]),
)
def test_delta_merge_equals_rebuild(
    base: list[tuple[int, int, int, int]],
    extra: list[tuple[int, int, int, int]],
    data: st.DataObject,
    compact_every: int,
) -> None:
    """Updates kept as deltas (with the grid patched in place) answer like a table rebuilt from
    scratch, before and after compaction; extends the grid when an update lies outside it."""
    t = _build(base)
    t.grid()
    gone = data.draw(st.lists(st.sampled_from(base), unique=True, max_size=len(base))) if base else []
    for i, (r, a, d, amt) in enumerate([*extra, *[(r, a, d, -amt) for r, a, d, amt in gone]]):
        t.add(r, T0 + a * 900, T0 + (a + d) * 900, amt)
        if (i + 1) % compact_every == 0:
            t.compact()
    kept = list(base)
    for g in gone:
        kept.remove(g)
    kept += extra
    ref = _build(kept)
    rows = np.arange(N_ROWS, dtype=np.int64)
    for a in range(-4, 60, 3):
        for d in (1, 4, 13):
            s, e = T0 + a * 900, T0 + (a + d) * 900
            assert t.peak(rows, s, e).tolist() == ref.peak(rows, s, e).tolist()
            assert t.next_decrease(rows, s) == ref.next_decrease(rows, s)
            for thr in (0, 3):
                got = t.earliest_fits(rows, np.full(N_ROWS, s), d * 900, np.full(N_ROWS, thr), s + 20 * 900)
                want = ref.earliest_fits(
                    rows, np.full(N_ROWS, s), d * 900, np.full(N_ROWS, thr), s + 20 * 900
                )
                assert got.tolist() == want.tolist()
    for r in range(N_ROWS):
        assert _steps(*t.series(r)) == _steps(*ref.series(r))
        assert t.row_max(r) == ref.row_max(r)
    t.compact()
    assert t.peak(rows, T0 - 900, T0 + 60 * 900).tolist() == ref.peak(rows, T0 - 900, T0 + 60 * 900).tolist()


def _steps(times: np.ndarray, levels: np.ndarray) -> list[tuple[int, int]]:
    """A step function without redundant events (same level as the previous one)."""
    out: list[tuple[int, int]] = []
    for t, lv in zip(times.tolist(), levels.tolist(), strict=True):
        if (out[-1][1] if out else 0) != lv:
            out.append((t, lv))
    return out


@settings(max_examples=150, deadline=None)
@given(
    items=st.lists(interval, max_size=12),
    start=st.integers(-4, 50),
    d=st.integers(1, 12),
    thr=st.lists(st.integers(-1, 6), min_size=N_ROWS, max_size=N_ROWS),
    span=st.integers(0, 40),
)
def test_earliest_fits_matches_brute_force(
    items: list[tuple[int, int, int, int]], start: int, d: int, thr: list[int], span: int
) -> None:
    t = _build(items)
    q = 900
    s0, latest, dur = T0 + start * q, T0 + (start + span) * q, d * q
    got = t.earliest_fits(np.arange(N_ROWS), np.full(N_ROWS, s0), dur, np.array(thr), latest)
    for r in range(N_ROWS):
        # candidates: s0 and every event time in range (the answer is always one of them)
        cands = sorted({s0} | {T0 + x * q for _, a, dd, _ in items for x in (a, a + dd)})
        want = next(
            (
                c
                for c in cands
                if s0 <= c <= latest and thr[r] >= 0 and _brute_peak(items, r, c, c + dur) <= thr[r]
            ),
            None,
        )
        assert (None if got[r] >= NONE_T else int(got[r])) == want


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), snap=worlds())
def test_host_level_skip_never_skips_a_feasible_start(data: st.DataObject, snap: Snapshot) -> None:
    req = data.draw(requests(snap))
    index = CalendarIndex(snap)
    plan = compile_plan(req, index)
    s = req.range_start_s + H * data.draw(st.integers(0, 3))
    for comp in plan.comps:
        bound = host_level_bound(index, plan, comp, s)
        # every start strictly between s and the bound (on the grid all events lie on) is infeasible
        t = s + H
        while t < bound and t <= req.latest_start_s:
            assert not feasible_at(snap, req, t, t + req.min_duration_s), (comp.name, t, bound)
            assert not isinstance(try_start(index, plan, t), Attempt)
            t += H


# far from the bulk of the bookings; queries start before the last (nothing asks past the horizon)
FAR_T = [0, 3600, T0 - 400 * 86400, T0 + 400 * 86400, 253_402_300_799, 2**38 - 1]
spans = st.tuples(
    st.integers(0, N_ROWS - 1),
    st.one_of(
        st.integers(0, 40).map(lambda q: T0 + q * 900),
        st.sampled_from(FAR_T),
        st.sampled_from([T0 - 2 * 86400, T0 + 30 * 86400]),  # just outside a grid: it is padded
    ),
    st.one_of(st.integers(1, 16).map(lambda q: q * 900), st.sampled_from([1, 86400, 2**37])),
    st.integers(1, 5),
)


@settings(max_examples=200, deadline=None)
@example(  # a booking from the epoch to year 6325 on row 0: its level is carried into the grid
    items=[(0, 0, 2**37, 1), (1, T0, 3600, 1), (1, T0 + 7200, 3600, 2)], later=[], qs=[(T0, 1), (0, 900)]
)
@example(  # row 0 held since the epoch is outside the grid; padding the grid back must keep it held
    items=[(0, 0, T0 + 3600, 1), (1, T0, 3600, 1), (1, T0 + 7200, 3600, 1)],
    later=[(1, T0 - 2 * 86400, 3600, 1)],
    qs=[(T0 - 86400, 900)],
)
@given(
    items=st.lists(spans, max_size=14),
    later=st.lists(spans, max_size=4),
    qs=st.lists(
        st.tuples(st.sampled_from([*FAR_T[:-1], T0, T0 + 450, T0 + 36000]), st.sampled_from([1, 900, 10**6])),
        min_size=1,
        max_size=10,
    ),
)
def test_grid_is_exact_when_a_few_bookings_lie_far_away(
    items: list[tuple[int, int, int, int]],
    later: list[tuple[int, int, int, int]],
    qs: list[tuple[int, int]],
) -> None:
    """Far bookings are left outside the grid (so it keeps fine blocks for the rest); the rows that
    have them answer exactly beyond it, also after updates that land outside it."""

    def brute(its: list[tuple[int, int, int, int]], row: int, s: int, e: int) -> int:
        pts = {s} | {x for r, a, d, _ in its if r == row for x in (a, a + d) if s < x < e}
        return max(sum(amt for r, a, d, amt in its if r == row and a <= t < a + d) for t in pts)

    items = [(r, a, min(d, 2**38 - 1 - a), amt) for r, a, d, amt in items if a + 1 < 2**38 - 1]
    later = [(r, a, min(d, 2**38 - 1 - a), amt) for r, a, d, amt in later if a + 1 < 2**38 - 1]
    arr = np.array(items, dtype=np.int64).reshape(-1, 4)
    table = StepTable.build(N_ROWS, arr[:, 0], arr[:, 1], arr[:, 1] + arr[:, 2], arr[:, 3])
    table.grid()
    for r, a, d, amt in later:
        table.add(r, a, a + d, amt)
    rows = np.arange(N_ROWS, dtype=np.int64)
    for s, d in qs:
        want = [brute(items + later, r, s, s + d) for r in range(N_ROWS)]
        assert table.peak(rows, s, s + d).tolist() == want, (s, d)
