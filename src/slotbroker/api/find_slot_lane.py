"""Where ``POST /v1/find-slot`` runs its search: a lane of a few threads (one by default), taken in the
order requests arrived.

Why: a search is CPU-bound Python and numpy holding the GIL for milliseconds at a time. On Starlette's
shared thread pool (40 threads) every waiting request had a thread of its own, so 16 concurrent searches
took turns on the GIL in whatever order the threads woke: each release (a database read, a numpy call)
was a chance to fall behind any other, and the order requests finished in had little to do with the
order they came in. Measured at 16 closed-loop clients on one core (docs/performance.md, "Issue 18:
find-slot in arrival order"), that made p99 2.1-3.8 times p50; in a FIFO lane of one thread it is
1.4-1.8 times, at the same throughput. A lane of one also hands the GIL cleanly to the event loop: the
thread is idle from the moment an answer is handed back until the loop has sent it and passed the
lane on (anyio's limiter wakes its waiters first come, first served).

The cost: a long search (up to the synchronous budget, ``SLOTBROKER_FIND_SLOT_BUDGET_MS``) holds up the
searches behind it instead of sharing the core with them. Searches estimated to be long are jobs anyway
(``SLOTBROKER_FIND_SLOT_ASYNC_COST``); ``SLOTBROKER_FIND_SLOT_THREADS`` widens the lane (2 lets short
searches pass a long one, at half speed, as the GIL is shared).

Every request that runs a search synchronously takes this lane (``run``): find-slot (route and fast
path), FABRIC's two find-slot operations, and IVOA's offer requests and direct executions (their search
and the offers it makes: one call into the services). The MCP ``find_slot`` tool calls
``POST /v1/find-slot`` in-process, so it comes through the route. Find-slot jobs run in the find-slot
service's own job threads: they have no time budget, and in the lane one would hold every short search
up for its whole length. Every other route keeps the shared pool.

Each request is stamped with the time it arrived (its body read): a calendar generation read that began
after it serves it (``services/find_slot/shared_reads.py``), so requests that queue here share one.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from slotbroker.bootstrap import Services
from slotbroker.wire.find_slot import FindSlotJob, FindSlotResult

T = TypeVar("T")


class FindSlotLane:
    """``run``: a call on one of ``threads`` threads, first come, first served; ``answer``:
    ``FindSlotService.answer`` there. ``after`` runs on the same thread after each call (the heap
    policy, ``api/heap.py``), so its work queues like a search and never runs beside one."""

    def __init__(self, threads: int = 1, *, after: Callable[[], None] | None = None) -> None:
        if threads < 1:
            raise ValueError("a find-slot lane needs at least one thread")
        self.threads = threads
        self._after = after
        # made on first use, inside the event loop serving the app (anyio binds it to the running backend)
        self._limiter: anyio.CapacityLimiter | None = None

    def limiter(self) -> anyio.CapacityLimiter:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.threads)
        return self._limiter

    async def answer(
        self, services: Services, doc: dict[str, Any], *, project: str, job: bool
    ) -> FindSlotResult | FindSlotJob:
        arrived = time.monotonic()
        call = functools.partial(services.find_slot.answer, doc, project=project, job=job, arrived=arrived)
        return await self.run(call)

    async def run(self, call: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(self._then_after, call, limiter=self.limiter())

    def _then_after(self, call: Callable[[], T]) -> T:
        try:
            return call()
        finally:
            if self._after is not None:
                self._after()


__all__ = ["FindSlotLane"]
