"""Reach-based skip-ahead (stages/reach.py): blocked spans and reaches against brute force, and the
search never skips a feasible start because of a cached reach (small chunks force the extension
path)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slotbroker.engine import CalendarIndex, Snapshot, find_slots, search
from slotbroker.engine.plan import CompPlan, Plan, compile_plan
from slotbroker.engine.stages import reach
from slotbroker.engine.stages.base import NEVER
from slotbroker.engine.stages.intervals import at_least, union

from ._reference import check_window, earliest, instants, usage
from .strategies import T0, H, requests, worlds
from .test_steps import N_ROWS, _brute_peak, _build, interval

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings(max_examples=150, deadline=None)
@given(
    items=st.lists(interval, max_size=12),
    lo=st.integers(-4, 50),
    span=st.integers(1, 40),
    thr=st.lists(st.integers(-1, 6), min_size=N_ROWS, max_size=N_ROWS),
    dirty=st.lists(interval, max_size=3),
)
def test_blocked_spans_match_brute_force(
    items: list[tuple[int, int, int, int]],
    lo: int,
    span: int,
    thr: list[int],
    dirty: list[tuple[int, int, int, int]],
) -> None:
    t = _build(items)
    q = 900
    for r, a, dd, amt in dirty:  # some rows as deltas (overlay), like after index.add
        t.add(r, T0 + a * q, T0 + (a + dd) * q, amt)
    all_items = items + dirty
    s, e = T0 + lo * q, T0 + (lo + span) * q
    o, a_, b_ = t.blocked_spans(np.arange(N_ROWS), s, e, np.array(thr))
    for r in range(N_ROWS):
        got = set()
        for i, x, y in zip(o.tolist(), a_.tolist(), b_.tolist(), strict=True):
            if i == r:
                assert s <= x < y <= e
                got |= set(range(x, y, q))
        # every quarter hour in [s, e) (all events lie on that grid) blocked or not
        want = {u for u in range(s, e, q) if _brute_peak(all_items, r, u, u + q) > thr[r]}
        assert got == want


def _in_reach(snap: Snapshot, plan: Plan, comp: CompPlan, t: int) -> bool:
    """Brute force: some site's hosts that each hold one instance over [t, t + d) could take
    ``count`` instances between them (each at most capacity // demand)."""
    d = plan.min_duration
    per_site: dict[str, int] = {}
    for r in comp.hosts.tolist():
        h = snap.hosts[r]
        most = comp.count
        fits = True
        for ci, cn in enumerate(plan.classes):
            dem = int(comp.demand[ci])
            if dem <= 0:
                continue
            cap = h.inventories[cn].capacity if cn in h.inventories else 0
            most = min(most, cap // dem)
            peak = max(usage(snap, h.id, cn, u) for u in instants(snap, t, t + d))
            fits &= peak + dem <= cap
        if fits and most > 0:
            per_site[h.site] = per_site.get(h.site, 0) + most
    return any(v >= comp.count for v in per_site.values())


@SETTINGS
@given(data=st.data(), snap=worlds(), chunk=st.sampled_from([H, 3 * H, 86_400]))
def test_next_possible_is_the_first_start_in_reach(data: st.DataObject, snap: Snapshot, chunk: int) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(reach, "MIN_CHUNK_S", chunk)
        mp.setattr(reach, "CHUNK_DURATIONS", 0)
        _check_next_possible(data, snap)


def _check_next_possible(data: st.DataObject, snap: Snapshot) -> None:
    req = data.draw(requests(snap))
    index = CalendarIndex(snap)
    plan = compile_plan(req, index)
    for comp in plan.comps:
        # queries in increasing order, as the search makes them (cached chunks get extended)
        for s in range(req.range_start_s, req.latest_start_s + 1, 2 * H):
            got = reach.next_possible(index, plan, comp, s)
            want = next(
                (
                    t
                    for t in range(s, req.latest_start_s + 1, H)
                    if comp.hosts.size and _in_reach(snap, plan, comp, t)
                ),
                NEVER,
            )
            assert got == want, (comp.name, s)


@SETTINGS
@given(
    data=st.data(),
    snap=worlds(),
    chunk=st.sampled_from([H, 2 * H, 86_400]),
    reach_after=st.sampled_from([0, 1, search.REACH_AFTER]),
)
def test_search_with_small_reach_chunks_stays_earliest(
    data: st.DataObject, snap: Snapshot, chunk: int, reach_after: int
) -> None:
    """Reaches (each component's, and each site group's joint one) only ever skip infeasible starts:
    with them consulted from the first rejection on, the search still finds the true earliest start."""
    req = data.draw(requests(snap))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(reach, "MIN_CHUNK_S", chunk)
        mp.setattr(reach, "CHUNK_DURATIONS", 0)
        mp.setattr(search, "REACH_AFTER", reach_after)
        result = find_slots(CalendarIndex(snap), req, explain=False)
    for w in result.windows:
        assert check_window(snap, req, w), w
    spans = sorted((w.start, w.end) for w in result.windows)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    assert min((w.start for w in result.windows), default=None) == earliest(snap, req, H)


interval_sets = st.lists(st.tuples(st.integers(0, 30), st.integers(1, 8)), max_size=8)


@settings(max_examples=200, deadline=None)
@given(sets=st.lists(interval_sets, min_size=1, max_size=4), need=st.integers(1, 4))
def test_at_least_counts_overlaps_like_brute_force(sets: list[list[tuple[int, int]]], need: int) -> None:
    """``at_least`` over disjoint-per-source intervals: the instants covered by ``need`` sources."""
    starts: list[int] = []
    ends: list[int] = []
    for s in sets:
        us, ue = union(np.array([a for a, _ in s], np.int64), np.array([a + d for a, d in s], np.int64))
        starts += us.tolist()
        ends += ue.tolist()
    got_s, got_e = at_least(np.array(starts, np.int64), np.array(ends, np.int64), need)
    got = {u for a, b in zip(got_s.tolist(), got_e.tolist(), strict=True) for u in range(a, b)}
    want = {u for u in range(0, 40) if sum(a <= u < b for a, b in zip(starts, ends, strict=True)) >= need}
    assert got == want
    assert all(b > a for a, b in zip(got_s.tolist(), got_e.tolist(), strict=True))
    assert all(b < a2 for b, a2 in zip(got_e.tolist(), got_s.tolist()[1:], strict=False))
