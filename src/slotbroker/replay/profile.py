"""The capacity profile the fast path schedules on: used processors of one pool as a step function.

Why a profile of counts and not per-host calendars: the machine is a pool of identical hosts and a job
takes ``procs`` of them for one interval. Interval graphs are perfect, so a set of run intervals whose
summed usage never exceeds the pool's size can always be given hosts without moving a job
(``hosts.assign``: greedy by start time); the count is therefore the whole feasibility question, and one
array query answers it for every candidate start at once. The independent audit (``audit.py``) checks
the host bookings, not this profile.

Semantics match the broker's calendar (docs/engine.md): integer seconds, half-open intervals
[start, end), a booking fits when peak usage + its amount <= capacity over its whole interval, the
earliest start is ``now`` or a time at which usage drops. ``drop_past`` forgets what ended before now
(no query can see it) so the arrays stay the size of the present.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
FOREVER = np.iinfo(np.int64).max // 4


class Profile:
    """``used[i]`` processors are taken on [times[i], times[i+1]); 0 before ``times[0]`` and after the
    last time (the last level is kept at 0)."""

    def __init__(self, capacity: int, start: int = 0) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self.times: I64 = np.array([start], dtype=np.int64)
        self.used: I64 = np.zeros(1, dtype=np.int64)

    # -- updates ----------------------------------------------------------------------------------------
    def _point(self, t: int) -> int:
        """Index of the breakpoint at ``t``, inserted (carrying the level in force) when missing."""
        i = int(np.searchsorted(self.times, t))
        if i < len(self.times) and self.times[i] == t:
            return i
        level = int(self.used[i - 1]) if i > 0 else 0
        self.times = np.insert(self.times, i, t)
        self.used = np.insert(self.used, i, level)
        return i

    def add(self, start: int, end: int, amount: int) -> None:
        """Take (``amount`` > 0) or give back (< 0) ``amount`` processors over [start, end)."""
        if end <= start or amount == 0:
            return
        i = self._point(start)
        j = self._point(end)
        self.used[i:j] += amount

    def drop_past(self, now: int) -> None:
        """Forget levels that ended at or before ``now`` and merge equal neighbours."""
        k = int(np.searchsorted(self.times, now, side="right")) - 1
        if k > 0:
            self.times = self.times[k:].copy()
            self.used = self.used[k:].copy()
        if len(self.used) > 1:
            keep = np.empty(len(self.used), dtype=bool)
            keep[0] = True
            keep[1:] = self.used[1:] != self.used[:-1]
            if not keep.all():
                self.times = self.times[keep]
                self.used = self.used[keep]

    # -- queries ----------------------------------------------------------------------------------------
    def peak(self, start: int, end: int) -> int:
        """Most processors taken at any instant of [start, end)."""
        self._cover(start)
        i = int(np.searchsorted(self.times, start, side="right")) - 1
        j = int(np.searchsorted(self.times, end, side="left"))
        return int(self.used[i : max(j, i + 1)].max())

    def trough(self, start: int, end: int) -> int:
        """Fewest processors taken at any instant of [start, end)."""
        self._cover(start)
        i = int(np.searchsorted(self.times, start, side="right")) - 1
        j = int(np.searchsorted(self.times, end, side="left"))
        return int(self.used[i : max(j, i + 1)].min())

    def fits(self, start: int, duration: int, amount: int) -> bool:
        return self.peak(start, start + duration) + amount <= self.capacity

    def free_at(self, t: int) -> int:
        i = int(np.searchsorted(self.times, t, side="right")) - 1
        return self.capacity - (int(self.used[i]) if i >= 0 else 0)

    def _cover(self, t: int) -> None:
        """Make sure a breakpoint lies at or before ``t`` (the level before the first one is 0)."""
        if t < self.times[0]:
            self._point(t)

    def earliest(self, now: int, duration: int, amount: int) -> int:
        """The earliest start >= ``now`` at which ``amount`` processors are free for ``duration``."""
        if amount > self.capacity:
            raise ValueError(f"{amount} processors never fit in {self.capacity}")
        self._cover(now)
        k0 = int(np.searchsorted(self.times, now, side="right")) - 1
        times = self.times[k0:]
        bad = self.used[k0:] + amount > self.capacity
        if not bad[0] and not bad.any():
            return now
        starts = times.copy()
        starts[0] = now
        bad_at = np.flatnonzero(bad)
        nxt = np.searchsorted(bad_at, np.arange(len(times)))  # first bad segment at or after each one
        limit = np.where(nxt < len(bad_at), times[bad_at[np.minimum(nxt, len(bad_at) - 1)]], FOREVER)
        ok = ~bad & (limit - starts >= duration)
        hit = np.flatnonzero(ok)
        if len(hit) == 0:  # pragma: no cover - the last level is 0, so the last segment always fits
            raise AssertionError("profile has no free tail")
        return int(starts[hit[0]])
