"""Queue disciplines for the fast path, each on a ``Profile`` of the pool.

A policy sees ``Ask``s: what a user submits (size, requested time), never the real runtime, so no policy
can use future knowledge; it learns that a job ended when the simulator calls ``finish``.

* ``conservative``: FCFS with reservations (conservative backfilling): every job books the earliest
  window that fits around every earlier booking when it arrives, and starts at that time. An early
  end frees the tail of its booking (later arrivals may use it); reservations stay where they are.
* ``conservative_compact``: the same, and on every early end each pending reservation, in arrival
  order, is moved to its earliest start (never later than before: its own old window is still free).
* ``easy``: EASY backfilling: only the head of the FCFS queue holds a reservation; any other job starts
  now when it fits now without moving that reservation.
* ``easy_sjbf``: EASY, trying backfill candidates shortest *requested* time first (the published
  "EASY-SJBF" baseline's rule; it uses user estimates only).
* ``priority``: EASY on a queue ordered by expansion factor (wait + requested) / requested, largest
  first (ties: arrival): short jobs that have waited long go first, and every job's factor grows while
  it waits, so none starves.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from slotbroker.replay.profile import Profile

DROP_EVERY = 512  # drop the profile's past every this many scheduling passes


@dataclass(frozen=True, slots=True)
class Ask:
    """A job as its user submitted it: all a policy may know."""

    id: int
    submit: int
    req: int
    procs: int


class Policy(Protocol):
    name: str

    def submit(self, ask: Ask, now: int) -> None: ...
    def finish(self, ask: Ask, start: int, now: int) -> None: ...
    def schedule(self, now: int) -> list[Ask]: ...
    def next_wakeup(self) -> int | None: ...


class Conservative:
    """FCFS with reservations; ``compact`` moves pending reservations earlier on every early end."""

    def __init__(self, capacity: int, *, compact: bool = False, start: int = 0) -> None:
        self.name = "conservative_compact" if compact else "conservative"
        self.profile = Profile(capacity, start)
        self.compact = compact
        self.pending: dict[int, tuple[Ask, int]] = {}  # id -> (ask, reserved start); dict keeps arrival order
        self.due: list[tuple[int, int]] = []  # heap of (reserved start, id); stale entries skipped
        self.passes = 0
        self.moves = 0

    def submit(self, ask: Ask, now: int) -> None:
        start = self.profile.earliest(now, ask.req, ask.procs)
        self.profile.add(start, start + ask.req, ask.procs)
        self.pending[ask.id] = (ask, start)
        heapq.heappush(self.due, (start, ask.id))

    def finish(self, ask: Ask, start: int, now: int) -> None:
        booked_end = start + ask.req
        if now < booked_end:
            self.profile.release_tail(start, booked_end, ask.procs, now)
            if self.compact:
                self._compact(now)

    def _compact(self, now: int) -> None:
        for ask_id, (ask, old) in list(self.pending.items()):
            if not self.profile.room_before(now, old, ask.procs):
                continue  # due now, or never room for it before its reservation: it cannot move
            self.profile.add(old, old + ask.req, -ask.procs)
            new = self.profile.earliest(now, ask.req, ask.procs)
            self.profile.add(new, new + ask.req, ask.procs)
            if new != old:
                self.moves += 1
                self.pending[ask_id] = (ask, new)
                heapq.heappush(self.due, (new, ask_id))

    def schedule(self, now: int) -> list[Ask]:
        started: list[Ask] = []
        while self.due and self.due[0][0] <= now:
            start, ask_id = heapq.heappop(self.due)
            entry = self.pending.get(ask_id)
            if entry is None or entry[1] != start:
                continue  # moved or already started
            del self.pending[ask_id]
            started.append(entry[0])
        self.passes += 1
        if self.passes % DROP_EVERY == 0:
            self.profile.drop_past(now)
        return started

    def next_wakeup(self) -> int | None:
        while self.due:
            start, ask_id = self.due[0]
            entry = self.pending.get(ask_id)
            if entry is not None and entry[1] == start:
                return start
            heapq.heappop(self.due)
        return None


class Easy:
    """EASY backfilling: the queue's head holds the only reservation. ``order`` sorts the queue at each
    pass (None: arrival order); ``backfill_order`` sorts the other candidates (None: queue order)."""

    def __init__(
        self,
        capacity: int,
        *,
        name: str = "easy",
        order: Callable[[Ask, int], float] | None = None,
        backfill_order: Callable[[Ask], float] | None = None,
        start: int = 0,
    ) -> None:
        self.name = name
        self.profile = Profile(capacity, start)  # running jobs, each until its requested end
        self.queue: list[Ask] = []
        self.order = order
        self.backfill_order = backfill_order
        self.passes = 0

    def submit(self, ask: Ask, now: int) -> None:
        self.queue.append(ask)

    def finish(self, ask: Ask, start: int, now: int) -> None:
        booked_end = start + ask.req
        if now < booked_end:
            self.profile.release_tail(start, booked_end, ask.procs, now)

    def _start(self, ask: Ask, now: int, started: list[Ask]) -> None:
        self.profile.add(now, now + ask.req, ask.procs)
        started.append(ask)

    def schedule(self, now: int) -> list[Ask]:
        self.passes += 1
        if self.passes % DROP_EVERY == 0:
            self.profile.drop_past(now)
        started: list[Ask] = []
        if not self.queue:
            return started
        if self.order is not None:
            key = self.order
            self.queue.sort(key=lambda a: (key(a, now), a.submit, a.id))
        queue = self.queue
        free = self.profile.free_at(now)
        while queue and queue[0].procs <= free and self.profile.fits(now, queue[0].req, queue[0].procs):
            head = queue.pop(0)
            self._start(head, now, started)
            free -= head.procs
        if not queue or free == 0:
            return started
        head = queue[0]
        shadow = self.profile.earliest(now, head.req, head.procs)
        self.profile.add(shadow, shadow + head.req, head.procs)  # the head's reservation
        rest = queue[1:]
        if self.backfill_order is not None:
            rest.sort(key=self.backfill_order)
        taken: set[int] = set()
        for ask in rest:
            if ask.procs <= free and self.profile.fits(now, ask.req, ask.procs):
                self._start(ask, now, started)
                taken.add(ask.id)
                free -= ask.procs
                if free == 0:
                    break
        self.profile.add(shadow, shadow + head.req, -head.procs)
        if taken:
            self.queue = [a for a in queue if a.id not in taken]
        return started

    def next_wakeup(self) -> int | None:
        return None


def expansion_factor(ask: Ask, now: int) -> float:
    """Sort key of ``priority``: minus (wait + requested) / requested, so the largest factor sorts first."""
    return -((now - ask.submit) + ask.req) / ask.req


POLICIES = ("conservative", "conservative_compact", "easy", "easy_sjbf", "priority")


def make_policy(name: str, capacity: int, start: int = 0) -> Policy:
    """A fresh policy by name (``POLICIES``); ``ValueError`` names the known ones."""
    if name == "conservative":
        return Conservative(capacity, start=start)
    if name == "conservative_compact":
        return Conservative(capacity, compact=True, start=start)
    if name == "easy":
        return Easy(capacity, start=start)
    if name == "easy_sjbf":
        return Easy(capacity, name=name, backfill_order=lambda a: a.req, start=start)
    if name == "priority":
        return Easy(capacity, name=name, order=expansion_factor, start=start)
    raise ValueError(f"unknown policy {name!r}; known: {', '.join(POLICIES)}")
