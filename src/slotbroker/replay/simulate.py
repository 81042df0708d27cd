"""The simulated clock of the fast path: jobs arrive at their submit times, end at start + real runtime.

The clock jumps from event to event (an arrival, an end, a reservation falling due); nothing sleeps.
At each instant the ends are handled first (their capacity is free at that instant: intervals are
half-open), then the arrivals, then the policy's scheduling pass. The policy sees ``Ask``s only; the
real runtime stays here and decides when ``finish`` is called.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass

from slotbroker.replay.policies import Ask, Policy, make_policy
from slotbroker.replay.trace import Job, Trace


@dataclass(frozen=True)
class Run:
    """One policy's replay of a trace: each job's start, in the trace's job order."""

    policy: str
    jobs: tuple[Job, ...]
    starts: tuple[int, ...]
    wall_s: float
    capacity: int


def ask_of(job: Job) -> Ask:
    return Ask(job.id, job.submit, job.req, job.procs)


def simulate(trace: Trace, policy: Policy | str, *, progress: Callable[[int], None] | None = None) -> Run:
    """Replay ``trace`` under ``policy`` (a name from ``POLICIES`` or an instance); ``progress(n)`` is
    called with the number of jobs started so far, now and then."""
    t0 = time.perf_counter()
    jobs = trace.jobs
    first = jobs[0].submit if jobs else 0
    pol = make_policy(policy, trace.capacity, first) if isinstance(policy, str) else policy
    by_id = {job.id: (i, job) for i, job in enumerate(jobs)}
    if len(by_id) != len(jobs):
        raise ValueError("job ids must be unique")
    starts = [-1] * len(jobs)
    ends: list[tuple[int, int]] = []  # heap of (end, job index)
    nxt = 0
    done = 0
    while nxt < len(jobs) or ends or pol.next_wakeup() is not None:
        candidates = [
            t
            for t in (
                jobs[nxt].submit if nxt < len(jobs) else None,
                ends[0][0] if ends else None,
                pol.next_wakeup(),
            )
            if t is not None
        ]
        now = min(candidates)
        while ends and ends[0][0] == now:
            _, i = heapq.heappop(ends)
            pol.finish(ask_of(jobs[i]), starts[i], now)
        while nxt < len(jobs) and jobs[nxt].submit == now:
            pol.submit(ask_of(jobs[nxt]), now)
            nxt += 1
        for ask in pol.schedule(now):
            i, job = by_id[ask.id]
            if starts[i] != -1:
                raise AssertionError(f"policy {pol.name} started job {ask.id} twice")
            starts[i] = now
            heapq.heappush(ends, (now + job.run, i))
            done += 1
            if progress is not None and done % 256 == 0:
                progress(done)
    if progress is not None:
        progress(done)
    if -1 in starts:
        raise AssertionError(f"policy {pol.name} never started job {jobs[starts.index(-1)].id}")
    return Run(pol.name, jobs, tuple(starts), time.perf_counter() - t0, trace.capacity)
