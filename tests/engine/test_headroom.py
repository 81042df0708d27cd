"""``furthest_end`` against a second-by-second reference on small grids."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from slotbroker.engine.headroom import Booking, Pair, furthest_end

PAIRS: list[Pair] = [("h1", "VCPU"), ("h1", "GPU"), ("h2", "VCPU")]


def reference(
    start: int, want: int, needs: dict[Pair, int], cap: dict[Pair, int], books: list[Booking]
) -> int:
    t = start
    while t < want:
        for pair, need in needs.items():
            used = sum(b.amount for b in books if b.pair == pair and b.start_s <= t < b.end_s)
            if used + need > cap.get(pair, 0):
                return t
        t += 1
    return want


bookings = st.lists(
    st.builds(
        lambda p, a, s, d: Booking(p, a, s, s + d),
        st.sampled_from(PAIRS),
        st.integers(1, 4),
        st.integers(0, 30),
        st.integers(1, 10),
    ),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(
    start=st.integers(0, 20),
    span=st.integers(0, 20),
    needs=st.dictionaries(st.sampled_from(PAIRS), st.integers(1, 4), min_size=1),
    cap=st.dictionaries(st.sampled_from(PAIRS), st.integers(0, 8)),
    books=bookings,
)
def test_matches_the_second_by_second_reference(
    start: int, span: int, needs: dict[Pair, int], cap: dict[Pair, int], books: list[Booking]
) -> None:
    want = start + span
    assert furthest_end(start, want, needs, cap, books) == reference(start, want, needs, cap, books)


def test_the_first_booking_that_does_not_leave_room_stops_it() -> None:
    pair = ("h1", "VCPU")
    books = [Booking(pair, 2, 10, 20), Booking(pair, 3, 15, 30)]
    assert furthest_end(0, 100, {pair: 4}, {pair: 8}, books) == 15
    assert furthest_end(0, 100, {pair: 3}, {pair: 8}, books) == 100
    assert furthest_end(0, 12, {pair: 7}, {pair: 8}, books) == 10
