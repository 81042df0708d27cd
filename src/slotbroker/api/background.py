"""What the server runs beside its requests, started and stopped in one lifespan.

* The lease event loop (``LeaseEventLoop``): fires lease events every ``Settings.event_loop_interval_s``
  and, on each tick, its periodic jobs (the offers' expiry sweep, wired in ``bootstrap``). An interval
  ``<= 0`` leaves it off: tests call ``app.state.services.lease_events.tick(now_s)`` themselves.
* The planner's embedded worker pool (``bootstrap.planner_workers``; 0 leaves it off, for tests or a fleet
  where only ``slotbroker admin worker`` processes run jobs), on ``app.state.planner_pool`` while it runs.
* The find-slot job threads: stopped with the app, so unfinished jobs stay in the database and are
  reported ``worker_lost`` later, never left hanging.
* The garbage collector's view of the app: everything built before serving (~250k objects: FastAPI,
  pydantic, SQLAlchemy, the service graph) is frozen, so a full collection no longer walks it. Walking
  it took ~100 ms with every thread stopped, the p99 of find-slot even at one client (decision 0031).
  Unfrozen at shutdown, so a process that builds many apps (the tests) can collect the old ones. What
  is built later (the calendar index above all) is frozen after each index build (``api/heap.py``).

Stopping runs in the reverse order of starting: no new lease event reaches a pool that has stopped.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from slotbroker.bootstrap import Services, planner_workers
from slotbroker.config import Settings
from slotbroker.services.planner import WorkerPool

log = logging.getLogger("slotbroker.planner")


def _log_pool_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the planner's embedded pool ended: %r (jobs wait for another worker)", task.exception())


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    svc: Services = app.state.services
    settings: Settings = app.state.settings
    workers = planner_workers(settings, svc.planner)
    pool = WorkerPool(svc.planner, workers=workers) if workers > 0 else None
    app.state.planner_pool = pool
    events = svc.lease_events
    try:
        if pool is not None:
            pool.start().add_done_callback(_log_pool_end)
        if settings.event_loop_interval_s > 0:
            events.interval_s = settings.event_loop_interval_s
            events.start()
        # no full collection first: in a process with a large heap (a test run making an app per
        # test) it cost more than the whole request path; startup's few cyclic leftovers stay frozen
        # until shutdown instead
        gc.freeze()
        app.state.heap.start()  # the collector's thresholds; later freezes follow index builds (api/heap.py)
        yield
    finally:
        app.state.heap.stop()
        gc.unfreeze()
        events.stop()
        if pool is not None:
            try:
                await pool.stop()  # finishes running steps and gives the claims back
            except Exception:  # the pool already died (e.g. it started before the migration)
                log.exception("planner pool stopped with an error")
        app.state.planner_pool = None
        svc.find_slot.shutdown()


__all__ = ["lifespan"]
