"""Give the fast path's run intervals hosts: the bookings the audit checks.

Greedy by start time (ends before starts at the same instant, lowest free host first) colours an
interval graph with as many colours as its largest clique, so whenever no instant has more than
``hosts x cores`` processors in use every job gets hosts for its whole run without moving. A job that
finds too few free hosts is booked anyway on the lowest-numbered hosts, overlapping: the audit then
reports the overbooking instead of this function hiding it.
"""

from __future__ import annotations

import heapq

from slotbroker.replay.audit import Booking
from slotbroker.replay.simulate import Run


def host_names(hosts: int) -> list[str]:
    width = max(4, len(str(hosts)))
    return [f"h{n:0{width}d}" for n in range(1, hosts + 1)]


def assign(run: Run, *, cores: int = 1) -> tuple[list[Booking], dict[str, int]]:
    """Bookings of ``run``'s jobs on ``capacity / cores`` hosts of ``cores`` each, and the capacities."""
    hosts = run.capacity // cores
    names = host_names(hosts)
    free_cores = [cores] * hosts
    free: list[int] = list(range(hosts))  # heap of hosts with a free core
    running: list[tuple[int, int, list[tuple[int, int]]]] = []  # heap of (end, job id, [(host, cores)])
    order = sorted(range(len(run.jobs)), key=lambda i: (run.starts[i], run.jobs[i].id))
    bookings: list[Booking] = []
    for i in order:
        job, start = run.jobs[i], run.starts[i]
        while running and running[0][0] <= start:
            _, _, done = heapq.heappop(running)
            for h, n in done:
                if free_cores[h] == 0:
                    heapq.heappush(free, h)
                free_cores[h] += n
        need = job.procs
        held: list[tuple[int, int]] = []
        while need and free:
            h = free[0]
            n = min(need, free_cores[h])
            free_cores[h] -= n
            need -= n
            held.append((h, n))
            if free_cores[h] == 0:
                heapq.heappop(free)
        for h, n in held:
            bookings.append(Booking(names[h], job.id, start, start + job.run, n))
        if need:  # not enough room: book the overflow on host 0 so the audit sees it
            bookings.append(Booking(names[0], job.id, start, start + job.run, need))
        heapq.heappush(running, (start + job.run, job.id, held))
    return bookings, dict.fromkeys(names, cores)
