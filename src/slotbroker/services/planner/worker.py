"""The embedded worker pool: N asyncio workers in this process pulling steps from the database queue.

One dispatcher claims due steps in batches (``uow.jobs.claims.due`` in the order of the queue policy)
while fewer than ``workers`` steps run, and starts one task per claimed job; a task runs the job's step
and, while the next step is due at once and the claim is still held, the steps after it. The pool holds
only the tasks it is running now (at most ``workers``); everything else is in the database. A heartbeat
renews this worker's claims every ``claim_ttl_s / 3``; if the process dies, its claims run out and any
other worker (or this one, restarted) takes the steps over - nothing lost, and nothing done twice
(provisioner calls are idempotent by the job id; a stale worker's commit is refused by ``version``).

Database calls run on a small thread pool: one thread for SQLite (its writers are serialised anyway,
and one thread avoids busy-waiting on the file lock), a few for PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import uuid as uuidlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from slotbroker.services.planner import step_commit, step_context, steps
from slotbroker.services.planner.allocations import LeaseAllocation, load_lease, remember_allocations
from slotbroker.services.planner.reconcile import ReconcileReport, reconcile
from slotbroker.services.planner.service import Planner
from slotbroker.store.repositories.job_queues import LOOKAHEAD, QueuePolicy, make_policy
from slotbroker.store.repositories.job_rows import JobSnapshot
from slotbroker.store.unit_of_work import UnitOfWork

log = logging.getLogger("slotbroker.planner")
T = TypeVar("T")


class WorkerPool:
    def __init__(
        self,
        planner: Planner,
        *,
        workers: int | None = None,
        worker_id: str | None = None,
        exclusive: bool = False,
        policy: QueuePolicy | None = None,
    ) -> None:
        self.planner = planner
        self.settings = planner.settings
        self.workers = workers or self.settings.workers
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuidlib.uuid4().hex[:8]}"
        self.exclusive = exclusive
        self.policy = policy or make_policy(self.settings.queue_policy)
        threads = 1 if planner.db.is_sqlite else min(8, max(2, self.workers))
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="planner-db")
        self.ctx = step_context.StepContext(
            planner.db,
            planner.provisioners,
            self.settings,
            self.worker_id,
            planner.clock_ms,
            planner.rehost,
            self._run_db,
            on_enqueue=planner.on_enqueue,
        )
        self._names = sorted(planner.provisioners)
        self._running: dict[str, asyncio.Task[None]] = {}
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._main: asyncio.Task[None] | None = None
        self.max_limits = {
            name: p.max_active for name, p in self.settings.provisioners.items() if p.max_active is not None
        }
        if self.settings.default_policy.max_active is not None:
            for name in planner.provisioners:
                self.max_limits.setdefault(name, self.settings.default_policy.max_active)
        self.steps_run = 0
        self.errors = 0
        self.reconciled: ReconcileReport | None = None

    # -- plumbing -------------------------------------------------------------------------------------------
    async def _run_db(self, fn: Callable[[], T], /) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    @property
    def in_flight(self) -> int:
        return len(self._running)

    def notify(self) -> None:
        """Wake the dispatcher (thread-safe): there may be new work."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(wake.set)

    # -- life cycle ---------------------------------------------------------------------------------------
    def start(self) -> asyncio.Task[None]:
        """Run the pool as a task of the running loop."""
        self._main = asyncio.create_task(self.run(), name=f"planner-pool-{self.worker_id}")
        return self._main

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stopping = False
        self.planner.attach(self)
        try:
            self.reconciled = await reconcile(self.ctx, takeover=self.exclusive)
            async with asyncio.TaskGroup() as group:
                group.create_task(self._heartbeat())
                group.create_task(self._purger())
                await self._dispatch()
                raise _Stop
        except* _Stop:
            pass
        finally:
            self.planner.detach(self)

    async def stop(self, timeout: float = 30.0) -> None:
        """Stop claiming, let running steps finish (up to ``timeout``), give back claims, end ``run``."""
        self._stopping = True
        if self._wake is not None:
            self._wake.set()
        if self._running:
            await asyncio.wait(list(self._running.values()), timeout=timeout)
        for task in list(self._running.values()):
            task.cancel()
        with contextlib.suppress(Exception):
            await self._run_db(self._release_claims)
        if self._main is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._main
        self._executor.shutdown(wait=True)

    def kill(self) -> None:
        """Die like a crashed process: tasks cancelled mid-step, claims left behind (tests)."""
        self._stopping = True
        for task in list(self._running.values()):
            task.cancel()
        if self._main is not None:
            self._main.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _release_claims(self) -> int:
        with UnitOfWork(self.planner.db) as uow:
            released = uow.jobs.claims.release(self.worker_id)
            uow.commit()
        return released

    # -- the loops ----------------------------------------------------------------------------------------
    async def _dispatch(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            free = self.workers - len(self._running)
            due: int | None = None
            if free > 0:
                want = min(free, self.settings.claim_batch)
                try:
                    jobs, found, due = await self._run_db(functools.partial(self._claim, want))
                except Exception:
                    self.errors += 1
                    log.exception("claiming steps failed")
                    jobs, found = [], {}
                for job in jobs:
                    task = asyncio.create_task(self._execute(job, found))
                    self._running[job.id] = task
                    task.add_done_callback(functools.partial(self._done, job.id))
                if len(jobs) == want:
                    continue
            self._wake.clear()
            if self._stopping:
                return
            wait = self.settings.idle_poll_s
            if due is not None:
                wait = max(0.0, min(wait, (due - self.planner.clock_ms()) / 1000))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
            if self.settings.wake_delay_s > 0:  # let jobs created together be claimed together
                await asyncio.sleep(self.settings.wake_delay_s)

    def _done(self, job_id: str, _task: object = None) -> None:
        self._running.pop(job_id, None)
        if self._wake is not None:
            self._wake.set()

    def _claim(self, limit: int) -> tuple[list[JobSnapshot], dict[str, LeaseAllocation], int | None]:
        """One transaction: claim up to ``limit`` steps, read the allocations of the leases the claimed
        steps need, and (if fewer than ``limit`` were due) when the next step becomes due."""
        now = self.planner.clock_ms()
        with UnitOfWork(self.planner.db) as uow:
            jobs = uow.jobs.claims.due(
                ranked=self.policy.ranked(now, limit * LOOKAHEAD, self._names),
                now_ms=now,
                worker=self.worker_id,
                until_ms=now + int(self.settings.claim_ttl_s * 1000),
                limit=limit,
                max_active=self.max_limits,
            )
            need = {j.lease_uuid for j in jobs if j.step in steps.NEEDS_ALLOCATION}
            found = {lease: load_lease(uow, lease, now // 1000) for lease in need}
            due = uow.jobs.claims.next_due_ms() if len(jobs) < limit else None
            uow.commit()
        return jobs, found, due

    def _next_due(self) -> int | None:
        with UnitOfWork(self.planner.db, readonly=True) as uow:
            return uow.jobs.claims.next_due_ms()

    async def _execute(self, job: JobSnapshot, found: dict[str, LeaseAllocation]) -> None:
        # task-local: this job's steps reuse its lease's allocation read with the claim
        remember_allocations(found.get(job.lease_uuid), job.lease_uuid)
        current: JobSnapshot | None = job
        while current is not None and not self._stopping:
            try:
                nxt = await steps.run_claimed(self.ctx, current)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.errors += 1
                log.exception("job %s step %s failed unexpectedly; retried later", current.id, current.step)
                await self._unclaim(current, self.settings.policy(current.provisioner).poll_interval_s)
                return
            self.steps_run += 1
            current = nxt
        if current is not None:  # stopping: give the claimed next step back
            await self._unclaim(current, 0.0)

    async def _unclaim(self, job: JobSnapshot, delay_s: float) -> None:
        with contextlib.suppress(Exception):
            await self._run_db(lambda: step_commit.unclaim(self.ctx, job, delay_s))

    async def _heartbeat(self) -> None:
        interval = self.settings.claim_ttl_s / 3

        def renew() -> int:
            now = self.planner.clock_ms()
            with UnitOfWork(self.planner.db) as uow:
                renewed = uow.jobs.claims.renew(self.worker_id, now + int(self.settings.claim_ttl_s * 1000))
                uow.commit()
            return renewed

        while not self._stopping:
            await asyncio.sleep(interval)
            try:
                await self._run_db(renew)
            except Exception:
                log.exception("heartbeat failed")

    async def _purger(self) -> None:
        while not self._stopping:
            try:
                await self._run_db(self.planner.purge)
            except Exception:
                log.exception("purge failed")
            with contextlib.suppress(TimeoutError):
                assert self._wake is not None
                await asyncio.sleep(self.settings.purge_interval_s)


class _Stop(Exception):
    pass


__all__ = ["WorkerPool"]
