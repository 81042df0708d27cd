"""Conservative backfilling with compaction, done by the broker: the service path's ``conservative``
(every arrival books its earliest window as a lease) and, on every early end, the PENDING leases of the
jobs still waiting, in arrival order, compacted by one call of the broker's batch use case
(``LeaseCompactor.compact_many``, ``POST /v1/leases/compact``): each moves to its earliest start as if
it were gone, never later, on any hosts of the machine. That is the fast path's ``conservative_compact``
(``policies.Conservative(compact=True)``) asked of the broker; ``compare`` counts where they differ.

It holds no rule of its own: where a lease can go and the move are the broker's; this module only keeps
the replay's books (each job's lease start, the lease events to tick) in step with the moves.
"""

from __future__ import annotations

import heapq
from typing import Protocol

from slotbroker.bootstrap import Services
from slotbroker.replay.policies import Ask
from slotbroker.services.booking.lease_schedule import event_times
from slotbroker.wire.leases import MAX_COMPACT, CompactLeases

PROJECT = "replay"  # the service path's project (service_path.PROJECT)


class Books(Protocol):
    """What the service path's policy keeps that compaction changes (``service_path.ServicePolicy``)."""

    svc: Services
    epoch_s: int
    placement: str
    leases: dict[int, tuple[str, int]]  # job id -> (lease id, start in trace time)
    waiting: dict[int, Ask]  # jobs booked and not started, in arrival order
    due: list[int]  # heap of trace times when a lease event falls due


def compact_waiting(books: Books, now: int) -> int:
    """Compact the waiting jobs' leases (arrival order) at ``now``; returns how many moved. Each moved
    lease's events are queued for the replay's ticks, a start due now included (a move fires nothing
    in its own transaction)."""
    at = books.epoch_s + now
    pending = [job for job in books.waiting if books.leases[job][1] > now]
    notice = books.svc.leases.policy.before_end_notice_s
    moved = 0
    for i in range(0, len(pending), MAX_COMPACT):
        jobs = pending[i : i + MAX_COMPACT]
        body = CompactLeases(leases=[books.leases[j][0] for j in jobs], policy=books.placement)
        report = books.svc.compaction.compact_many(body, project=PROJECT, now_s=at)
        for job, outcome in zip(jobs, report.items, strict=True):
            if not outcome.moved or outcome.start is None:
                continue
            start = int(outcome.start.timestamp())
            books.leases[job] = (outcome.lease, start - books.epoch_s)
            for due in event_times(start, start + books.waiting[job].req, notice).values():
                if due >= at:
                    heapq.heappush(books.due, due - books.epoch_s)
            moved += 1
    return moved
