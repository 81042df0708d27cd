"""The planner's use cases: create, get, list, cancel, logs, purge, and the lease-event hooks.

Everything a job is lives in the database (``jobs``, ``job_transitions``, ``job_logs``); this object
holds configuration only (and weak wake-up hints for in-process worker pools), so any number of API
replicas can serve these calls while any number of workers run the steps.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import threading
import uuid as uuidlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from slotbroker.domain.errors import AlreadyExists, FieldError, Forbidden, NotFound, ValidationFailed
from slotbroker.domain.jobs import JobSpec, JobState, Reason, Step, Workload
from slotbroker.services.access.tokens import Role
from slotbroker.services.booking.claims import ClaimService
from slotbroker.services.booking.lease_rehost import LeaseRehoster, Rehost
from slotbroker.services.planner.provisioners.base import Provisioner, ProvisionerContext, load_all
from slotbroker.services.planner.settings import PlannerSettings, role_allows
from slotbroker.services.planner.step_context import LIVE_LEASE, EnqueueHook, StepContext, wall_ms
from slotbroker.services.planner.steps import run_claimed
from slotbroker.services.planner.views import job_out, log_line_out
from slotbroker.store.db import Database
from slotbroker.store.repositories import job_rows
from slotbroker.store.repositories.job_queues import one_job
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire.jobs import JobList, JobOut, LogLineOut

if TYPE_CHECKING:
    from slotbroker.services.booking.lease_events import LeaseEvent

log = logging.getLogger("slotbroker.planner")

MAX_PAGE = 500
LEASE_ENDINGS = ("end", "cancelled", "error")
LEASE_OVER = ("end", "cancelled")  # the lease gives its capacity back (an ERROR lease keeps it)
RELEASE_THREADS = 2  # concurrent release_lease calls (tool processes against the scheduler)


BeforeEndCallback = Callable[[str, list[str], int], object]
"""Called with (lease id, ids of its live jobs, lease end in seconds) when a lease's before_end fires."""


class Notifiable(Protocol):
    """A worker pool as the planner sees it: told when a step became due (``WorkerPool`` is one)."""

    def notify(self) -> None: ...


class Planner:
    """The planner service. ``provisioners`` defaults to the entry points named in ``settings.enabled``
    (an installed one that is not named is never loaded). ``rehost`` moves a lease off the hosts a failed
    attempt used when its retry commits (default: ``LeaseRehoster``, booking alternates through
    ``ClaimService``; ``retry.alternates = False`` in a provisioner's policy turns moving off for that
    provisioner)."""

    def __init__(
        self,
        db: Database,
        *,
        settings: PlannerSettings | None = None,
        provisioners: Mapping[str, Provisioner] | None = None,
        clock_ms: Callable[[], int] = wall_ms,
        rehost: Rehost | None = None,
        on_enqueue: EnqueueHook | None = None,
    ) -> None:
        self.db = db
        self.settings = settings or PlannerSettings()
        if provisioners is None:
            context = ProvisionerContext(
                self.settings.max_log_lines,
                self.settings.max_log_line_bytes,
                run_as=self.settings.local_run_as,
            )
            provisioners = load_all(self.settings.enabled, context)
        self.provisioners = dict(provisioners)
        self.clock_ms = clock_ms
        self.rehost: Rehost = rehost if rehost is not None else LeaseRehoster(ClaimService(db))
        self.on_enqueue = on_enqueue
        self._before_end: list[BeforeEndCallback] = []
        self._pools: list[Notifiable] = []
        self._releasing: list[Future[None]] = []
        self._releaser: ThreadPoolExecutor | None = None  # made on the first lease-scoped release
        self._lock = threading.Lock()

    # -- wiring ------------------------------------------------------------------------------------------
    def step_context(self, worker: str) -> StepContext:
        return StepContext(
            self.db,
            self.provisioners,
            self.settings,
            worker,
            self.clock_ms,
            self.rehost,
            on_enqueue=self.on_enqueue,
        )

    async def run_job(self, job_id: str, *, worker: str) -> bool:
        """Claim job ``job_id`` if its step is due and unclaimed, and run it (and the steps chained after
        it). The entry point for an external queue's task (procrastinate: one task per (job, step), the
        task body is ``await planner.run_job(job_id, worker=...)``). False if there was nothing to do
        (not due, claimed by someone else, or finished): the task just ends."""
        ctx = self.step_context(worker)
        now = self.clock_ms()

        def claim() -> list[job_rows.JobSnapshot]:
            with UnitOfWork(self.db) as uow:
                claimed = uow.jobs.claims.due(
                    ranked=one_job(job_id, now, sorted(self.provisioners)),
                    now_ms=now,
                    worker=worker,
                    until_ms=now + int(self.settings.claim_ttl_s * 1000),
                    limit=1,
                    max_active={},
                )
                uow.commit()
            return claimed

        jobs = await ctx.run_db(claim)
        if not jobs:
            return False
        current: job_rows.JobSnapshot | None = jobs[0]
        while current is not None:
            current = await run_claimed(ctx, current)
        return True

    def attach(self, pool: Notifiable) -> None:
        with self._lock:
            self._pools.append(pool)

    def detach(self, pool: Notifiable) -> None:
        with self._lock:
            if pool in self._pools:
                self._pools.remove(pool)

    def _wake(self) -> None:
        with self._lock:
            pools = list(self._pools)
        for pool in pools:
            pool.notify()

    def register(self, hooks: Any) -> None:
        """Subscribe to lease events (``LeaseEventLoop``, ``LeaseHooks`` or ``LeaseService``: anything
        with ``on_event(kind, callback)``); the callbacks run inside the lease event's transaction."""
        for kind in ("start", "before_end", *LEASE_ENDINGS):
            hooks.on_event(kind, self._hook)

    def on_before_end(self, callback: BeforeEndCallback) -> None:
        self._before_end.append(callback)

    # -- use cases -----------------------------------------------------------------------------------------
    def required_role(self, provisioner: str) -> Role:
        """The lowest role that may use ``provisioner``: the operator's setting, else its own."""
        configured = self.settings.roles.get(provisioner)
        return configured if configured is not None else self.provisioners[provisioner].min_role

    def admit(self, provisioner: str, role: Role | None = None, workload: Workload | None = None) -> None:
        """Refuse a provisioner that is not enabled here (``validation_error``) or, given the caller's
        ``role``, one that needs a higher role (``forbidden``); both name ``/provisioner``. Given the
        ``workload``, refuse what that provisioner could never run (``validation_error`` at
        ``/workload/...``). It writes nothing, so an adapter calls it before any other work done for the
        job (offers, a lease). ``role`` None: a caller that acts on the database directly (the CLI),
        trusted as such."""
        if provisioner not in self.provisioners:
            known = ", ".join(sorted(self.provisioners)) or "none"
            raise ValidationFailed("unknown provisioner", [FieldError("/provisioner", f"one of: {known}")])
        needed = self.required_role(provisioner)
        if role is not None and not role_allows(role, needed):
            raise Forbidden(
                f"the {provisioner} provisioner needs the {needed.value} role",
                [FieldError("/provisioner", f"needs a token of role {needed.value} or higher")],
            )
        problems = [] if workload is None else self.provisioners[provisioner].workload_problems(workload)
        if problems:
            raise ValidationFailed(f"the {provisioner} provisioner cannot run this workload", problems)

    def create(self, spec: JobSpec, *, project: str | None = None, role: Role | None = None) -> JobOut:
        """Create a job (idempotent by ``spec.job_id``: the same id again returns the first job; the same
        id with a different spec is ``already_exists``). ``role``: the caller's, checked by ``admit``."""
        self.admit(spec.provisioner, role, spec.workload)
        job_id = spec.job_id or str(uuidlib.uuid4())
        if not job_id or len(job_id) > 64:
            raise ValidationFailed("invalid job id", [FieldError("/id", "1 to 64 characters")])
        workload = spec.workload.to_json()
        ahead = self.provisioners[spec.provisioner].provisions_ahead  # e.g. an advance reservation
        now = self.clock_ms()
        created: JobOut | None = None
        with UnitOfWork(self.db) as uow:
            lease = uow.jobs.lease_for_new_job(spec.lease_id)
            usable = lease is not None and lease.status in LIVE_LEASE
            if not usable and uow.jobs.get(job_id) is not None:
                return self._same(job_id, project, spec, workload)  # a replay after the lease ended
            if lease is None or (project is not None and lease.project != project):
                raise NotFound(f"no lease {spec.lease_id}")
            if lease.status not in LIVE_LEASE:
                raise ValidationFailed(
                    f"lease {spec.lease_id} is {lease.status}",
                    [FieldError("/lease_id", "a pending or active lease")],
                )
            values: dict[str, Any] = {
                "id": job_id,
                "name": spec.name,
                "project": str(lease.project),
                "lease_uuid": spec.lease_id,
                "provisioner": spec.provisioner,
                "priority": spec.priority,
                "workload": workload,
                "state": JobState.PENDING.value,
                "step": Step.PROVISION.value,
                "due_ms": now if ahead else max(now, int(lease.start_s) * 1000),
                "version": 0,
                "cancel_requested": False,
                "expire_requested": False,
                "attempt": 1,
                "released_attempt": 0,
                "releases": 0,
                "run_stopped": False,
                "created_ms": now,
                "updated_ms": now,
            }
            seq = uow.jobs.insert(values)  # None: the id is taken (a replay, or a concurrent insert)
            if seq is not None:
                uow.jobs.logs.add_transition(seq, None, JobState.PENDING.value, now)
                new = job_rows.JobSnapshot(
                    seq=seq,
                    claimed_by=None,
                    claimed_until_ms=None,
                    reason=None,
                    provision_id=None,
                    provision_started_ms=None,
                    run_id=None,
                    exit_code=None,
                    error=None,
                    finished_ms=None,
                    tried_hosts=None,
                    **values,
                )
                if self.on_enqueue is not None:
                    self.on_enqueue(uow, new)
                created = job_out(new, [(None, JobState.PENDING.value, now, "")])
            uow.commit()
        if created is not None:
            self._wake()  # after the commit, so a woken worker sees the job
            return created
        return self._same(job_id, project, spec, workload)

    def _same(self, job_id: str, project: str | None, spec: JobSpec, workload: str) -> JobOut:
        job = self._find(job_id, None)  # a taken id reads the same whichever project holds it
        same = (
            (project is None or job.project == project)
            and job.lease_id == spec.lease_id
            and job.provisioner == spec.provisioner
            and job.workload.domain().to_json() == workload
        )
        if not same:
            raise AlreadyExists(f"job {job_id} exists with a different spec", [FieldError("/id", "in use")])
        return job

    def _find(self, job_id: str, project: str | None) -> JobOut:
        with UnitOfWork(self.db, readonly=True) as uow:
            job = uow.jobs.get(job_id)
            if job is None or (project is not None and job.project != project):
                raise NotFound(f"no job {job_id}")
            return job_out(job, uow.jobs.logs.transitions(job.seq))

    def get(self, job_id: str, *, project: str | None = None) -> JobOut:
        return self._find(job_id, project)

    def list(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        states: Sequence[str] | None = None,
        project: str | None = None,
        lease_id: str | None = None,
    ) -> JobList:
        """Newest first; ``cursor`` is the ``next_cursor`` of the previous page (keyset: stable while
        jobs are added)."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationFailed("invalid limit", [FieldError("/limit", f"1 to {MAX_PAGE}")])
        valid = {s.value for s in JobState}
        bad = [s for s in states or () if s not in valid]
        if bad:
            raise ValidationFailed(
                "invalid state", [FieldError("/state", f"one of {', '.join(sorted(valid))}")]
            )
        after = job_rows.decode_cursor(cursor) if cursor else None
        with UnitOfWork(self.db, readonly=True) as uow:
            rows = uow.jobs.list(
                limit=limit + 1, after=after, states=states, project=project, lease_uuid=lease_id
            )
        more = len(rows) > limit
        rows = rows[:limit]
        nxt = job_rows.encode_cursor(rows[-1].seq) if more and rows else None
        return JobList(items=[job_out(r) for r in rows], next_cursor=nxt)

    def cancel(self, job_id: str, *, project: str | None = None) -> JobOut:
        """Cancel a job. Pending and untouched: canceled at once. Otherwise the cancel flag is set and
        the worker tears the job down at its next step boundary (cancel the run, release, canceled)."""
        now = self.clock_ms()
        with UnitOfWork(self.db) as uow:
            job = uow.jobs.get(job_id, lock=True)
            if job is None or (project is not None and job.project != project):
                raise NotFound(f"no job {job_id}")
            if not job.terminal and not job.cancel_requested:
                self._request_stop(uow, job, Reason.CANCEL, now, "canceled by request")
            uow.commit()
        self._wake()
        return self.get(job_id)

    def _request_stop(
        self, uow: UnitOfWork, job: job_rows.JobSnapshot, reason: Reason, now: int, why: str
    ) -> None:
        untouched = (
            job.state == JobState.PENDING.value
            and job.provision_id is None
            and (job.claimed_until_ms is None or job.claimed_until_ms < now)
        )
        flag = "cancel_requested" if reason is Reason.CANCEL else "expire_requested"
        if untouched:
            final = JobState.CANCELED if reason is Reason.CANCEL else JobState.EXPIRED
            uow.jobs.write(
                job,
                {
                    flag: True,
                    "reason": reason.value,
                    "state": final.value,
                    "step": None,
                    "claimed_by": None,
                    "claimed_until_ms": None,
                    "finished_ms": now,
                    "updated_ms": now,
                },
            )
            uow.jobs.logs.add_transition(job.seq, job.state, final.value, now, why)
        else:
            uow.jobs.request_stop(job.seq, flag, min(job.due_ms, now), now)
            if self.on_enqueue is not None:
                self.on_enqueue(uow, job_rows.replace(job, {flag: True, "due_ms": min(job.due_ms, now)}))
        uow.jobs.logs.add_lines(job.seq, now, [("planner", why)])

    def logs(
        self, job_id: str, *, project: str | None = None, after: int = 0, limit: int = 1000
    ) -> builtins.list[LogLineOut]:
        with UnitOfWork(self.db, readonly=True) as uow:
            job = uow.jobs.get(job_id)
            if job is None or (project is not None and job.project != project):
                raise NotFound(f"no job {job_id}")
            rows = uow.jobs.logs.lines(job.seq, after_id=after, limit=limit)
        return [log_line_out(row) for row in rows]

    def purge(self, *, now_ms: int | None = None, batch: int = 1000) -> int:
        """Delete terminal jobs older than the retention TTL, with their transitions and logs."""
        now = self.clock_ms() if now_ms is None else now_ms
        before = now - int(self.settings.retention_s * 1000)
        total = 0
        while True:
            with UnitOfWork(self.db) as uow:
                n = uow.jobs.purge_terminal(before, batch)
                uow.commit()
            total += n
            if n < batch:
                return total

    # -- lease events ------------------------------------------------------------------------------------
    def _hook(self, uow: UnitOfWork, event: LeaseEvent) -> None:  # LeaseHooks' Hook signature
        self.on_lease_event(uow, event.kind, event.lease_id, event.due_s)

    def on_lease_event(self, uow: UnitOfWork, kind: str, lease_id: str, due_s: int) -> None:
        """Apply a lease event to the lease's jobs, inside the caller's transaction:
        ``start`` makes its waiting jobs due now; ``before_end`` logs a notice on each live job and calls
        the ``on_before_end`` callbacks; ``end`` / ``cancelled`` / ``error`` expire the jobs (untouched
        pending jobs at once; others are torn down by a worker: cancel run, release, expired)."""
        now = self.clock_ms()
        if kind in LEASE_OVER and any(p.lease_scoped for p in self.provisioners.values()):
            uow.after_commit(lambda: self._release_lease(lease_id))
        jobs = uow.jobs.live_of_lease(lease_id)
        if not jobs:
            return
        if kind == "start":
            uow.jobs.make_due(lease_id, now)
        elif kind == "before_end":
            ends = datetime.fromtimestamp(due_s, UTC).isoformat()
            for job in jobs:
                uow.jobs.logs.add_lines(
                    job.seq, now, [("planner", f"lease {lease_id} before_end notice ({ends})")]
                )
            for callback in self._before_end:
                callback(lease_id, [j.id for j in jobs], due_s)
        elif kind in LEASE_ENDINGS:
            for job in jobs:
                if not job.expire_requested and not job.cancel_requested:
                    self._request_stop(uow, job, Reason.EXPIRE, now, f"lease {lease_id}: {kind}")
        self._wake()

    def _release_lease(self, lease_id: str) -> None:
        """After the commit that ended or cancelled the lease: each ``lease_scoped`` provisioner frees
        what it keeps for the lease, in a thread of its own, so the request or the event loop that
        ended it waits for no tool. A failure (or a crash before this runs) leaves the provision to
        its own end or to a sweep (the Slurm drift sync deletes reservations of leases that are over).
        A small pool runs them: a mass cancel queues its calls rather than starting a thread (and a tool
        process) per lease against the scheduler at once."""
        scoped = {name: p for name, p in self.provisioners.items() if p.lease_scoped}

        async def release_all() -> None:
            for name, prov in scoped.items():
                try:
                    await asyncio.wait_for(
                        prov.release_lease(lease_id), self.settings.policy(name).call_timeout_s
                    )
                except Exception as exc:
                    log.warning("provisioner %s kept lease %s's provision: %r", name, lease_id, exc)

        with self._lock:
            if self._releaser is None:
                self._releaser = ThreadPoolExecutor(RELEASE_THREADS, thread_name_prefix="lease-release")
            done = [f for f in self._releasing if f.done()]
            self._releasing = [f for f in self._releasing if not f.done()]
            self._releasing.append(self._releaser.submit(asyncio.run, release_all()))
        for finished in done:
            if (exc := finished.exception()) is not None:  # release_all logs its own failures
                log.warning("lease release thread failed: %r", exc)

    def wait_released(self, timeout_s: float = 30.0) -> None:
        """Wait for the ``release_lease`` calls started so far (tests, and a shutdown that wants them)."""
        with self._lock:
            started = list(self._releasing)
        wait(started, timeout_s)

    def close(self) -> None:
        """Stop the release threads once the calls already queued have run (each bounded by its
        provisioner's call timeout)."""
        with self._lock:
            releaser, self._releaser = self._releaser, None
        if releaser is not None:
            releaser.shutdown(wait=True)


__all__ = ["BeforeEndCallback", "Planner", "job_out"]
