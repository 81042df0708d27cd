"""How far a booking can grow: the furthest end a lease's items still fit to, given what else is booked
on their providers. Advice for a refused extension (``max_end`` in the problem); the claim stays the
authority on whether an extension fits."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

Pair = tuple[str, str]  # (provider uuid, resource class)


@dataclass(frozen=True)
class Booking:
    pair: Pair
    amount: int
    start_s: int
    end_s: int


def furthest_end(
    start_s: int,
    want_end_s: int,
    needs: Mapping[Pair, int],
    capacity: Mapping[Pair, int],
    bookings: Iterable[Booking],
) -> int:
    """The largest ``t`` in [start_s, want_end_s] such that over [start_s, t) every pair's usage by
    ``bookings`` plus its need stays within its capacity. A pair without capacity fits nowhere (start_s).
    """
    steps: dict[Pair, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for b in bookings:
        if b.pair not in needs or b.end_s <= start_s or b.start_s >= want_end_s:
            continue
        steps[b.pair][max(b.start_s, start_s)] += b.amount
        steps[b.pair][b.end_s] -= b.amount
    limit = want_end_s
    for pair, need in needs.items():
        cap = capacity.get(pair, 0)
        if need > cap:
            return start_s
        used = 0
        for t in sorted(steps.get(pair, {})):
            if t >= limit:
                break
            used += steps[pair][t]
            if used + need > cap:
                limit = t
                break
    return max(limit, start_s)


__all__ = ["Booking", "Pair", "furthest_end"]
