"""The pool the fast path schedules on: used processors of one pool, held by the engine's ``StepTable``.

Why a count and not per-host calendars: the machine is a pool of identical hosts and a job takes
``procs`` of them for one interval. Interval graphs are perfect, so a set of run intervals whose summed
usage never exceeds the pool's size can always be given hosts without moving a job (``hosts.assign``:
greedy by start time); the count is therefore the whole feasibility question. The independent audit
(``audit.py``) checks the host bookings, not this count.

No capacity rule lives here: the pool is a one-row ``StepTable`` (engine/steps.py) and every answer is
the engine's -- a booking fits when its window's peak is at most ``capacity - amount``
(``earliest_fit``), the earliest start is found by the engine's scan, an early end releases the tail
(``shorten``), and the past is forgotten with ``drop_past`` so the table stays the size of the present.
This module only translates the policies' words (processors, capacity) into the table's (threshold).
"""

from __future__ import annotations

import numpy as np

from slotbroker.engine.steps import HORIZON, StepTable

ROW = np.zeros(1, dtype=np.int64)  # the pool is row 0


class Profile:
    """The processors of a pool of ``capacity`` taken over time; nothing is booked before ``start``."""

    def __init__(self, capacity: int, start: int = 0) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self.table = StepTable(1)
        self.table.drop_past(start)

    # -- updates ----------------------------------------------------------------------------------------
    def add(self, start: int, end: int, amount: int) -> None:
        """Take (``amount`` > 0) or give back (< 0) ``amount`` processors over [start, end)."""
        self.table.add(0, start, end, amount)

    def release_tail(self, start: int, end: int, amount: int, now: int) -> None:
        """A booking of ``amount`` over [start, end) ended at ``now``: give back [now, end)."""
        self.table.shorten(0, start, end, amount, now)

    def drop_past(self, now: int) -> None:
        """Forget what ended at or before ``now`` (no question about now or later can see it)."""
        self.table.drop_past(now)

    # -- queries ----------------------------------------------------------------------------------------
    def peak(self, start: int, end: int) -> int:
        """Most processors taken at any instant of [start, end)."""
        return int(self.table.peak(ROW, start, end)[0])

    def free_at(self, t: int) -> int:
        return self.capacity - self.peak(t, t + 1)

    def fits(self, start: int, duration: int, amount: int) -> bool:
        """Whether ``amount`` processors are free over [start, start + duration)."""
        return self.table.earliest_fit(0, start, duration, self.capacity - amount, start) is not None

    def room_before(self, now: int, until: int, amount: int) -> bool:
        """Whether ``amount`` processors are free at some instant of [now, until)."""
        return (
            until > now and self.table.earliest_fit(0, now, 1, self.capacity - amount, until - 1) is not None
        )

    def earliest(self, now: int, duration: int, amount: int) -> int:
        """The earliest start >= ``now`` at which ``amount`` processors are free for ``duration``."""
        if amount > self.capacity:
            raise ValueError(f"{amount} processors never fit in {self.capacity}")
        got = self.table.earliest_fit(0, now, duration, self.capacity - amount, HORIZON - duration)
        if got is None:  # the pool empties after its last booking, so this cannot happen
            raise AssertionError("no start before the horizon")
        return got
