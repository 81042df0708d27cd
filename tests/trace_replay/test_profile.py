"""The fast path's pool adapter (a one-row engine ``StepTable``) against a brute-force reference,
second by second: it translates processors and capacity into the engine's thresholds correctly."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    st.lists(st.integers(0, 20), max_size=8),
    st.integers(0, HORIZON),
    st.integers(1, 25),
    st.integers(1, CAP),
    st.integers(0, HORIZON),
)
def test_the_adapter_answers_as_brute_force(
    adds: list[tuple[int, int, int]], cuts: list[int], now: int, duration: int, amount: int, dropped: int
) -> None:
    """Bookings, early ends (tails released at a cut), the past dropped: earliest start, peak, free
    processors, fits and room-before as counted second by second."""
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
    for (start, length, n), cut in zip(kept, cuts, strict=False):
        end = start + length
        new_end = max(start, end - cut)
        prof.release_tail(start, end, n, new_end)
        for u in range(new_end, end):
            used[u] -= n
    drop = min(dropped, now)
    prof.drop_past(drop)  # forgetting the past changes no answer about now or later
    end = now + duration
    level = [used[u] if u < len(used) else 0 for u in range(now, end)]
    assert prof.earliest(now, duration, amount) == reference_earliest(used, now, duration, amount)
    assert prof.peak(now, end) == max(level)
    assert prof.free_at(now) == CAP - used[now]
    assert prof.fits(now, duration, amount) == (max(level) + amount <= CAP)
    assert prof.room_before(now, end, amount) == (min(level) + amount <= CAP)


def test_an_ask_larger_than_the_pool_never_fits() -> None:
    with pytest.raises(ValueError, match="never fit"):
        Profile(CAP).earliest(0, 10, CAP + 1)
