"""The capacity profile against a brute-force reference (second by second)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from slotbroker.engine.steps import StepTable
from slotbroker.replay.profile import Profile

CAP = 4
HORIZON = 60

bookings = st.lists(st.tuples(st.integers(0, HORIZON), st.integers(1, 20), st.integers(1, CAP)), max_size=8)


def reference_earliest(used: list[int], now: int, duration: int, amount: int) -> int:
    t = now
    while True:
        if all(used[u] + amount <= CAP for u in range(t, t + duration) if u < len(used)):
            return t
        t += 1


@settings(max_examples=200, deadline=None)
@given(
    bookings,
    st.lists(st.booleans(), max_size=8),
    st.integers(0, HORIZON),
    st.integers(1, 25),
    st.integers(1, CAP),
    st.integers(0, HORIZON),
)
def test_earliest_peak_and_trough_match_brute_force(
    adds: list[tuple[int, int, int]], removes: list[bool], now: int, duration: int, amount: int, dropped: int
) -> None:
    prof = Profile(CAP)
    used = [0] * (HORIZON + 30)
    kept = []
    for start, length, n in adds:
        if max(used[start : start + length]) + n > CAP:
            continue  # the profile only ever holds feasible bookings
        prof.add(start, start + length, n)
        for u in range(start, start + length):
            used[u] += n
        kept.append((start, length, n))
    for (start, length, n), gone in zip(kept, removes, strict=False):
        if gone:
            prof.add(start, start + length, -n)
            for u in range(start, start + length):
                used[u] -= n
    drop = min(dropped, now)
    prof.drop_past(drop)  # forgetting the past changes no answer about now or later
    assert prof.earliest(now, duration, amount) == reference_earliest(used, now, duration, amount)
    end = now + duration
    assert prof.peak(now, end) == max(used[u] if u < len(used) else 0 for u in range(now, end))
    assert prof.trough(now, end) == min(used[u] if u < len(used) else 0 for u in range(now, end))
    assert prof.free_at(now) == CAP - used[now]


@settings(max_examples=200, deadline=None)
@given(
    bookings,
    st.lists(st.booleans(), max_size=8),
    st.integers(0, HORIZON),
    st.integers(1, 25),
    st.integers(1, CAP),
)
def test_the_profile_answers_as_the_engines_step_table(
    adds: list[tuple[int, int, int]], removes: list[bool], now: int, duration: int, amount: int
) -> None:
    """The fast path's profile against the calendar index's own step function (engine/steps.py) fed the
    same bookings: the same earliest start and the same peak (a differential test of the two paths'
    capacity rule)."""
    prof = Profile(CAP)
    table = StepTable(1)
    kept = []
    for start, length, n in adds:
        if prof.peak(start, start + length) + n > CAP:
            continue
        prof.add(start, start + length, n)
        table.add(0, start, start + length, n)
        kept.append((start, length, n))
    for (start, length, n), gone in zip(kept, removes, strict=False):
        if gone:
            prof.add(start, start + length, -n)
            table.add(0, start, start + length, -n)
    row = np.array([0], dtype=np.int64)
    assert prof.earliest(now, duration, amount) == table.earliest_fit(0, now, duration, CAP - amount, 10**6)
    assert prof.peak(now, now + duration) == int(table.peak(row, now, now + duration)[0])
