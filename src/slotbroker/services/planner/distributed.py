"""Planner scale-out on PostgreSQL with procrastinate (docs/operations.md, "Planner workers").

The job row stays the queue and the source of truth (docs/decisions/0012): ``jobs.step`` / ``due_ms`` say
what is owed. procrastinate carries the *wake-ups*: one task ``slotbroker.planner.run_job(job_id)`` is
deferred inside every transaction that gives a job a step to be run by someone else (the planner's
``on_enqueue`` hook: create, step commits, cancel, lease events). The defer runs on the very connection
of that SQLAlchemy transaction (procrastinate's psycopg connector accepts an external connection:
``task.configure(connection=...)``), so the state change and the enqueue commit together or not at all:
no phantom task for a rolled-back change, no lost step for a committed one.

The task body is ``Planner.run_job``: it claims the row like any worker (``FOR UPDATE SKIP LOCKED``) and
runs the job's chained steps; a duplicate or stale task finds nothing to claim and ends. The same step
handlers (``steps.run_claimed`` / ``step_commit.commit``) serve the embedded pool and this worker.

Three things procrastinate alone would miss, handled here:

* a step given back without a commit (a worker crashed mid-step, or a step raised and was unclaimed)
  has no task: every worker runs a *sweeper* that defers ``run_job`` for steps due and unclaimed for
  longer than ``sweep_grace_s`` (a duplicate is harmless);
* a claim must outlive a slow provisioner call: the worker heartbeats its claims every ``claim_ttl_s/3``;
* at start the worker reconciles jobs left under way (``planner.reconcile``), like the embedded pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid as uuidlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import procrastinate

from slotbroker.services.planner.reconcile import reconcile
from slotbroker.services.planner.service import Planner
from slotbroker.services.planner.step_context import EnqueueHook
from slotbroker.store.db import Database
from slotbroker.store.repositories.job_rows import JobSnapshot
from slotbroker.store.unit_of_work import UnitOfWork

log = logging.getLogger("slotbroker.planner.procrastinate")

TASK_NAME = "slotbroker.planner.run_job"
QUEUE = "slotbroker-planner"


def conninfo(database_url: str) -> str:
    """A libpq URI for a SQLAlchemy PostgreSQL URL (``postgresql+psycopg://`` -> ``postgresql://``)."""
    scheme, sep, rest = database_url.partition("://")
    if not sep or scheme.split("+", 1)[0] != "postgresql":
        raise ValueError("procrastinate needs PostgreSQL (SLOTBROKER_DATABASE_URL is not postgresql://...)")
    return f"postgresql://{rest}"


@dataclass
class Distributed:
    """procrastinate wiring for one planner on one PostgreSQL database.

    ``app`` (async psycopg connector) runs workers; ``defer_app`` (sync connector, never opened: it only
    executes on connections handed to it) defers inside the planner's transactions.
    """

    database_url: str
    planner: Planner | None = None
    worker_id: str = field(
        default_factory=lambda: f"pc:{socket.gethostname()}:{os.getpid()}:{uuidlib.uuid4().hex[:8]}"
    )
    app: procrastinate.App = field(init=False)
    defer_app: procrastinate.App = field(init=False)
    deferred: int = 0

    def __post_init__(self) -> None:
        info = conninfo(self.database_url)
        self.app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=info))
        self.app.task(name=TASK_NAME, queue=QUEUE)(self._run_job)
        self.defer_app = self.app.with_connector(procrastinate.SyncPsycopgConnector(conninfo=info))

    # -- enqueue (inside the planner's transactions) ---------------------------------------------------------
    def enqueue_hook(self) -> EnqueueHook:
        """The ``Planner(on_enqueue=...)`` callback: defer ``run_job`` on the transaction's connection."""

        def hook(uow: UnitOfWork, job: JobSnapshot) -> None:
            self.defer(uow, job.id, job.due_ms)

        return hook

    def defer(self, uow: UnitOfWork, job_id: str, due_ms: int) -> None:
        """Defer ``run_job`` on the unit of work's own psycopg connection: it commits with the state
        change, or not at all."""
        at = datetime.fromtimestamp(due_ms / 1000, UTC)
        task = self.defer_app.tasks[TASK_NAME]
        options: dict[str, Any] = {"connection": uow.jobs.driver_connection()}
        if at > datetime.now(UTC):
            options["schedule_at"] = at
        task.configure(**options).defer(job_id=job_id)
        self.deferred += 1

    def apply_schema(self) -> None:
        """Create procrastinate's tables (idempotent enough for a fresh schema; see docs)."""
        with procrastinate.App(
            connector=procrastinate.SyncPsycopgConnector(conninfo=conninfo(self.database_url))
        ).open() as app:
            app.schema_manager.apply_schema()

    def schema_applied(self, db: Database) -> bool:
        with UnitOfWork(db, readonly=True) as uow:
            return uow.jobs.table_exists("procrastinate_jobs")

    # -- the task ----------------------------------------------------------------------------------------
    async def _run_job(self, job_id: str) -> None:
        if self.planner is None:
            raise RuntimeError("this procrastinate app has no planner (a defer-only process)")
        await self.planner.run_job(job_id, worker=self.worker_id)

    # -- the worker ----------------------------------------------------------------------------------------
    async def run_worker(
        self,
        *,
        concurrency: int = 16,
        sweep_interval_s: float = 5.0,
        sweep_grace_s: float = 2.0,
        stop: asyncio.Event | None = None,
    ) -> None:
        """Run a procrastinate worker for the planner queue until ``stop`` is set (or cancelled),
        with the sweeper and the claim heartbeat beside it."""
        planner = self.planner
        if planner is None:
            raise RuntimeError("run_worker needs a planner")
        ctx = planner.step_context(self.worker_id)
        await reconcile(ctx, takeover=False)
        async with self.app.open_async():
            worker = asyncio.create_task(
                self.app.run_worker_async(
                    queues=[QUEUE],
                    concurrency=concurrency,
                    name=self.worker_id,
                    wait=True,
                    install_signal_handlers=stop is None,
                    fetch_job_polling_interval=1.0,
                    delete_jobs="successful",
                )
            )
            helpers = [
                asyncio.create_task(self._sweeper(sweep_interval_s, sweep_grace_s)),
                asyncio.create_task(self._heartbeat()),
            ]
            try:
                if stop is None:
                    await worker
                else:
                    waiter = asyncio.create_task(stop.wait())
                    await asyncio.wait({worker, waiter}, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
            finally:
                for task in helpers:
                    task.cancel()
                if not worker.done():
                    worker.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await worker
                for task in helpers:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await asyncio.to_thread(self._release_claims)

    def sweep(self, grace_s: float = 2.0, limit: int = 500) -> int:
        """Defer ``run_job`` for steps due (and unclaimed) for more than ``grace_s``: the wake-ups a crash
        or an unclaim left without a task. Returns how many were deferred."""
        assert self.planner is not None
        now = self.planner.clock_ms()
        before = now - int(grace_s * 1000)
        with UnitOfWork(self.planner.db) as uow:
            rows = uow.jobs.claims.overdue(before, limit)
            for job_id, due in rows:
                self.defer(uow, job_id, due)
            uow.commit()
        return len(rows)

    async def _sweeper(self, interval_s: float, grace_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                n = await asyncio.to_thread(self.sweep, grace_s)
                if n:
                    log.info("sweeper deferred %d wake-ups", n)
            except Exception:
                log.exception("planner sweep failed")

    async def _heartbeat(self) -> None:
        assert self.planner is not None
        ttl = self.planner.settings.claim_ttl_s
        while True:
            await asyncio.sleep(ttl / 3)
            try:
                await asyncio.to_thread(self._renew, ttl)
            except Exception:
                log.exception("heartbeat failed")

    def _renew(self, ttl: float) -> int:
        assert self.planner is not None
        with UnitOfWork(self.planner.db) as uow:
            renewed = uow.jobs.claims.renew(self.worker_id, self.planner.clock_ms() + int(ttl * 1000))
            uow.commit()
        return renewed

    def _release_claims(self) -> int:
        assert self.planner is not None
        with UnitOfWork(self.planner.db) as uow:
            released = uow.jobs.claims.release(self.worker_id)
            uow.commit()
        return released


def distributed_planner(db: Database, **planner_kwargs: Any) -> tuple[Planner, Distributed]:
    """A planner whose enqueues are procrastinate defers on ``db`` (PostgreSQL), and its wiring."""
    dist = Distributed(db.url)
    planner = Planner(db, on_enqueue=dist.enqueue_hook(), **planner_kwargs)
    dist.planner = planner
    return planner, dist


__all__ = ["QUEUE", "TASK_NAME", "Distributed", "conninfo", "distributed_planner"]
