"""The capacity profile the fast path schedules on: used processors of one pool as a step function.

Why a profile of counts and not per-host calendars: the machine is a pool of identical hosts and a job
takes ``procs`` of them for one interval. Interval graphs are perfect, so a set of run intervals whose
summed usage never exceeds the pool's size can always be given hosts without moving a job
(``hosts.assign``: greedy by start time); the count is therefore the whole feasibility question, and one
forward scan over the steps answers it. The independent audit (``audit.py``) checks
the host bookings, not this profile.

Semantics match the broker's calendar (docs/engine.md): integer seconds, half-open intervals
[start, end), a booking fits when peak usage + its amount <= capacity over its whole interval, the
earliest start is ``now`` or a time at which usage drops. ``drop_past`` forgets what ended before now
(no query can see it) so the arrays stay the size of the present.

Plain Python lists, not numpy: the profile holds a few hundred steps (running jobs and reservations),
where numpy's per-call overhead costs more than the loops it saves (measured: compaction over KTH-SP2
ran ~5x faster this way), and most earliest-start scans stop after a few steps.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right


class Profile:
    """``used[i]`` processors are taken on [times[i], times[i+1]); 0 before ``times[0]`` and after the
    last time (the last level is kept at 0)."""

    def __init__(self, capacity: int, start: int = 0) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self.times: list[int] = [start]
        self.used: list[int] = [0]

    # -- updates ----------------------------------------------------------------------------------------
    def _point(self, t: int) -> int:
        """Index of the breakpoint at ``t``, inserted (carrying the level in force) when missing."""
        times = self.times
        i = bisect_left(times, t)
        if i < len(times) and times[i] == t:
            return i
        self.used.insert(i, self.used[i - 1] if i > 0 else 0)
        times.insert(i, t)
        return i

    def add(self, start: int, end: int, amount: int) -> None:
        """Take (``amount`` > 0) or give back (< 0) ``amount`` processors over [start, end)."""
        if end <= start or amount == 0:
            return
        i = self._point(start)
        j = self._point(end)
        used = self.used
        for k in range(i, j):
            used[k] += amount

    def drop_past(self, now: int) -> None:
        """Forget levels that ended at or before ``now`` and merge equal neighbours."""
        k = bisect_right(self.times, now) - 1
        times, used = self.times[max(k, 0) :], self.used[max(k, 0) :]
        keep_t, keep_u = [times[0]], [used[0]]
        for t, u in zip(times[1:], used[1:], strict=True):
            if u != keep_u[-1]:
                keep_t.append(t)
                keep_u.append(u)
        self.times, self.used = keep_t, keep_u

    # -- queries ----------------------------------------------------------------------------------------
    def _span(self, start: int, end: int) -> tuple[int, int]:
        """Indexes [i, j) of the steps that overlap [start, end)."""
        self._cover(start)
        i = bisect_right(self.times, start) - 1
        return i, max(bisect_left(self.times, end), i + 1)

    def peak(self, start: int, end: int) -> int:
        """Most processors taken at any instant of [start, end)."""
        i, j = self._span(start, end)
        return max(self.used[i:j])

    def trough(self, start: int, end: int) -> int:
        """Fewest processors taken at any instant of [start, end)."""
        i, j = self._span(start, end)
        return min(self.used[i:j])

    def fits(self, start: int, duration: int, amount: int) -> bool:
        return self.peak(start, start + duration) + amount <= self.capacity

    def free_at(self, t: int) -> int:
        i = bisect_right(self.times, t) - 1
        return self.capacity - (self.used[i] if i >= 0 else 0)

    def _cover(self, t: int) -> None:
        """Make sure a breakpoint lies at or before ``t`` (the level before the first one is 0)."""
        if t < self.times[0]:
            self._point(t)

    def earliest(self, now: int, duration: int, amount: int) -> int:
        """The earliest start >= ``now`` at which ``amount`` processors are free for ``duration``:
        ``now`` or the start of a step, scanning forward past every step that is too full."""
        if amount > self.capacity:
            raise ValueError(f"{amount} processors never fit in {self.capacity}")
        self._cover(now)
        times, used = self.times, self.used
        limit = self.capacity - amount
        last = len(times)
        i = bisect_right(times, now) - 1
        start = now
        while True:
            if used[i] > limit:
                i += 1  # the last step is at level 0, so this never runs off the end
                start = times[i]
                continue
            j = i + 1
            end = start + duration
            while j < last and times[j] < end and used[j] <= limit:
                j += 1
            if j == last or times[j] >= end:
                return start
            i = j  # step j is too full: the next candidate starts after it
