"""The step handlers: one function runs a claimed job's current step; ``step_commit.commit`` commits
what it decided.

Each step is: (claimed by a worker) -> provisioner call(s), outside any transaction -> one commit
transaction that locks the job, checks the claim is still ours, checks the cancel / expire flags *in that
same transaction*, and writes the state change together with the next step (the job row is the queue).
The handlers are plain coroutines over a ``StepContext``: the embedded pool (``worker.py``) calls them,
and a procrastinate task can call ``run_claimed`` / ``Planner.run_job`` the same way.

Rules kept here:
* the job id is the idempotency key of every provisioner call (``<job id>#<attempt>`` for ``provision``,
  the job id for ``submit``), so re-running a step after a crash creates nothing twice;
* a release is decided in a commit (step ``release``) and done once: the release step calls
  ``release`` only if ``released_attempt < attempt`` and records ``released_attempt = attempt`` in its
  commit, which only the claim holder can make;
* after a cancel or expiry is requested no forward transition happens: whatever the step found (a
  provision id, a run id) is recorded, then the job is torn down (cancel run -> release -> final state);
* a retry after a failed attempt moves the lease off the hosts it failed on (``StepContext.rehost``) in
  the commit that writes the retry, so each attempt provisions capacity the lease holds (docs/planner.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from slotbroker.domain.jobs import JobState, Reason, Step, Workload
from slotbroker.services.planner.allocations import (
    LeaseAllocation,
    forget_allocations,
    keep_allocation,
    load_lease,
    remembered,
)
from slotbroker.services.planner.provisioners.base import (
    RUN_DONE,
    Allocation,
    Provision,
    Provisioner,
    ProvisionPhase,
    RunPhase,
    RunStatus,
)
from slotbroker.services.planner.settings import ProvisionerPolicy
from slotbroker.services.planner.step_commit import commit
from slotbroker.services.planner.step_context import (
    HOLDING_LEASE,
    LIVE_LEASE,
    Change,
    StepContext,
    key_of,
    teardown_step,
)
from slotbroker.store.repositories import job_rows
from slotbroker.store.unit_of_work import UnitOfWork

log = logging.getLogger("slotbroker.planner")

T = TypeVar("T")


# -- the lease's allocation ---------------------------------------------------------------------------------
async def _lease(ctx: StepContext, job: job_rows.JobSnapshot) -> LeaseAllocation:
    found = remembered(job.lease_uuid)
    if found is not None:
        return found

    def read() -> LeaseAllocation:
        with UnitOfWork(ctx.db, readonly=True) as uow:
            return load_lease(uow, job.lease_uuid, ctx.clock_ms() // 1000)

    found = await ctx.run_db(read)
    keep_allocation(job.lease_uuid, found)
    return found


NEEDS_ALLOCATION = frozenset({Step.PROVISION.value, Step.SUBMIT.value})


# -- handlers ----------------------------------------------------------------------------------------------
async def _call(policy: ProvisionerPolicy, coro: Coroutine[Any, Any, T]) -> T:
    return await asyncio.wait_for(coro, policy.call_timeout_s)


def _failed_attempt(
    ctx: StepContext, job: job_rows.JobSnapshot, error: str, provision_id: str | None
) -> Change:
    policy = ctx.settings.policy(job.provisioner)
    retry = job.attempt < policy.retry.max_attempts
    values: dict[str, Any] = {"error": error}
    if provision_id:
        values["provision_id"] = provision_id
    then = f"retrying in {policy.retry.delay_s(job.attempt):g} s" if retry else "giving up"
    note = [("planner", f"attempt {job.attempt} failed: {error}; {then}")]
    if provision_id:  # release it first; the release step goes on to the retry or the failure
        return Change(
            Step.RELEASE, values, reason=Reason.RETRY.value if retry else Reason.FAIL.value, logs=note
        )
    if retry:
        values["attempt"] = job.attempt + 1
        return Change(
            Step.PROVISION, values, delay_s=policy.retry.delay_s(job.attempt), reason=None, logs=note
        )
    return Change(Step.FINISH, values, reason=Reason.FAIL.value, logs=note)


def _expire(job: job_rows.JobSnapshot, why: str) -> Change:
    values = {"expire_requested": True, "error": why}
    return Change(teardown_step(job), values, reason=Reason.EXPIRE.value, logs=[("planner", why)])


def _run_finished(
    ctx: StepContext, job: job_rows.JobSnapshot, rs: RunStatus, enter: tuple[JobState, ...]
) -> Change:
    logs = [("run", _cut(ctx, line)) for line in rs.logs[-ctx.settings.max_log_lines :]]
    values: dict[str, Any] = {"run_stopped": True, "exit_code": rs.exit_code}
    if rs.phase is RunPhase.SUCCEEDED:
        reason = Reason.SUCCEED.value
    else:
        reason = Reason.FAIL.value
        values["error"] = (  # a provisioner's detail says more than the bare exit code (which host...)
            (rs.detail or f"exit code {rs.exit_code}")
            if rs.phase is RunPhase.FAILED
            else f"run {rs.phase.value} {rs.detail}"
        ).strip()
    nxt = Step.RELEASE if job.provision_id and job.released_attempt < job.attempt else Step.FINISH
    return Change(nxt, values, enter=enter, reason=reason, logs=logs)


def _cut(ctx: StepContext, line: str) -> str:
    limit = ctx.settings.max_log_line_bytes
    raw = line.encode("utf-8", "replace")
    return line if len(raw) <= limit else raw[:limit].decode("utf-8", "ignore")


async def _provision(ctx: StepContext, prov: Provisioner, job: job_rows.JobSnapshot) -> Change:
    policy = ctx.settings.policy(job.provisioner)
    found = await _lease(ctx, job)
    allocation = found.for_job(job)
    if found.lease_status not in LIVE_LEASE or allocation is None:
        return _expire(job, f"lease {job.lease_uuid} is {found.lease_status or 'gone'}")
    try:
        pid = await _call(policy, prov.provision(allocation, key_of(job)))
    except Exception as exc:
        return _failed_attempt(ctx, job, f"provision: {exc!r}", None)
    notable = job.attempt > 1 or allocation.label != "primary"  # routine first attempts go unlogged
    line = f"attempt {job.attempt}: provision {pid} on {allocation.label} allocation"
    note = [("planner", line)] if notable else []
    try:
        st = await _call(policy, prov.status(pid))
    except Exception:
        st = None
    if st is not None and st.phase is ProvisionPhase.READY:
        return Change(Step.SUBMIT, {"provision_id": pid}, logs=note)
    if st is None or st.phase is ProvisionPhase.PENDING:
        return Change(Step.AWAIT_PROVISION, {"provision_id": pid}, delay_s=policy.poll_interval_s, logs=note)
    return _failed_attempt(ctx, job, f"provision {st.phase.value} {st.detail}", pid)


async def _follow(ctx: StepContext, prov: Provisioner, job: job_rows.JobSnapshot) -> None:
    """Let a provisioner that ``follows_lease`` bring its provision to the lease's current window (an
    extended or shortened lease); trouble is logged and tried again at the next poll."""
    if not prov.follows_lease or not job.provision_id:
        return
    found = await _lease(ctx, job)
    allocation = found.for_job(job)
    if found.lease_status not in LIVE_LEASE or allocation is None:
        return
    try:
        policy = ctx.settings.policy(job.provisioner)
        await _call(policy, prov.follow(Provision(job.provision_id, allocation)))
    except Exception as exc:
        log.warning("job %s: %s could not follow lease %s: %r", job.id, prov.name, job.lease_uuid, exc)


async def _await_provision(ctx: StepContext, prov: Provisioner, job: job_rows.JobSnapshot) -> Change:
    policy = ctx.settings.policy(job.provisioner)
    pid = job.provision_id or ""
    await _follow(ctx, prov, job)
    try:
        st = await _call(policy, prov.status(pid))
        phase, detail = st.phase, st.detail
    except Exception as exc:
        phase, detail = ProvisionPhase.PENDING, repr(exc)
    if phase is ProvisionPhase.READY:
        return Change(Step.SUBMIT)
    if phase is ProvisionPhase.PENDING:
        waited_ms = ctx.clock_ms() - (job.provision_started_ms or job.updated_ms)
        if waited_ms <= policy.readiness_timeout_s * 1000:
            return Change(Step.AWAIT_PROVISION, delay_s=policy.poll_interval_s)
        error = f"provision {pid} not ready after {policy.readiness_timeout_s:g} s (readiness timeout)"
    else:
        error = f"provision {pid} {phase.value} {detail}".strip()
    return _failed_attempt(ctx, job, error, pid)


async def _submit(ctx: StepContext, prov: Provisioner, job: job_rows.JobSnapshot) -> Change:
    policy = ctx.settings.policy(job.provisioner)
    found = await _lease(ctx, job)
    allocation = found.for_job(job)
    if found.lease_status not in LIVE_LEASE or allocation is None:
        return _expire(job, f"lease {job.lease_uuid} is {found.lease_status or 'gone'}")
    provision = Provision(job.provision_id or "", allocation)
    try:
        run_id = await _call(policy, prov.submit(Workload.from_json(job.workload), provision, job.id))
    except Exception as exc:
        return _failed_attempt(ctx, job, f"submit: {exc!r}", job.provision_id)
    try:
        rs = await _call(policy, prov.run_status(run_id))
    except Exception:
        rs = RunStatus(RunPhase.QUEUED)
    values = {"run_id": run_id}
    if rs.phase in RUN_DONE:
        change = _run_finished(ctx, job, rs, (JobState.SUBMITTED,))
        change.values.update(values)
        return change
    enter = (JobState.SUBMITTED, JobState.RUNNING) if rs.phase is RunPhase.RUNNING else (JobState.SUBMITTED,)
    return Change(Step.AWAIT_RUN, values, delay_s=policy.poll_interval_s, enter=enter)


async def _await_run(ctx: StepContext, prov: Provisioner, job: job_rows.JobSnapshot) -> Change:
    policy = ctx.settings.policy(job.provisioner)
    await _follow(ctx, prov, job)
    try:
        rs = await _call(policy, prov.run_status(job.run_id or ""))
    except Exception:
        return Change(Step.AWAIT_RUN, delay_s=policy.poll_interval_s)
    if rs.phase in RUN_DONE:
        return _run_finished(ctx, job, rs, ())
    if rs.phase is RunPhase.UNKNOWN:
        lost = RunStatus(RunPhase.UNKNOWN, None, (), "lost: the provisioner does not know it")
        return _run_finished(ctx, job, lost, ())
    enter = (JobState.RUNNING,) if rs.phase is RunPhase.RUNNING and job.state == JobState.SUBMITTED else ()
    return Change(Step.AWAIT_RUN, delay_s=policy.poll_interval_s, enter=enter)


async def _cancel_run(ctx: StepContext, prov: Provisioner, job: job_rows.JobSnapshot) -> Change:
    policy = ctx.settings.policy(job.provisioner)
    try:
        await _call(policy, prov.cancel(job.run_id or ""))
    except Exception as exc:
        msg = f"cancel of run {job.run_id} failed: {exc!r}; retrying"
        return Change(Step.CANCEL_RUN, delay_s=policy.poll_interval_s, logs=[("planner", msg)])
    logs: list[tuple[str, str]] = [("planner", f"run {job.run_id} canceled")]
    try:
        rs = await _call(policy, prov.run_status(job.run_id or ""))
        logs += [("run", _cut(ctx, line)) for line in rs.logs[-ctx.settings.max_log_lines :]]
    except Exception:
        pass
    nxt = Step.RELEASE if job.provision_id and job.released_attempt < job.attempt else Step.FINISH
    return Change(nxt, {"run_stopped": True}, logs=logs)


async def _release(ctx: StepContext, prov: Provisioner, job: job_rows.JobSnapshot) -> Change:
    policy = ctx.settings.policy(job.provisioner)
    values: dict[str, Any] = {}
    logs: list[tuple[str, str]] = []
    if job.provision_id and job.released_attempt < job.attempt:
        kept = prov.lease_scoped and await ctx.run_db(lambda: _lease_holds(ctx, job.lease_uuid))
        if not kept:  # a lease-scoped provision outlives the job while its lease lasts (release_lease)
            try:
                await _call(policy, prov.release(job.provision_id))
            except Exception as exc:
                msg = f"release of {job.provision_id} failed: {exc!r}; retrying"
                return Change(Step.RELEASE, delay_s=policy.poll_interval_s, logs=[("planner", msg)])
        values = {"released_attempt": job.attempt, "releases": job.releases + 1}
        if job.reason != Reason.SUCCEED.value:  # the usual release after a success goes unlogged
            done = f"kept for lease {job.lease_uuid} until it ends" if kept else "released"
            logs.append(("planner", f"provision {job.provision_id} {done}"))
    if job.reason == Reason.RETRY.value:
        values.update(attempt=job.attempt + 1, provision_id=None, run_id=None, run_stopped=False)
        delay = policy.retry.delay_s(job.attempt)
        return Change(Step.PROVISION, values, delay_s=delay, reason=None, logs=logs)
    return Change(Step.FINISH, values, logs=logs)


def _lease_holds(ctx: StepContext, lease_uuid: str) -> bool:
    """Whether the lease still holds its capacity (read now: a cancel may have just committed)."""
    with UnitOfWork(ctx.db, readonly=True) as uow:
        row = uow.jobs.lease(lease_uuid)
    return row is not None and str(row.status) in HOLDING_LEASE


async def _finish(ctx: StepContext, prov: Provisioner, job: job_rows.JobSnapshot) -> Change:
    return Change(Step.FINISH)


Handler = Callable[[StepContext, Provisioner, job_rows.JobSnapshot], Awaitable[Change]]
HANDLERS: dict[str, Handler] = {
    Step.PROVISION.value: _provision,
    Step.AWAIT_PROVISION.value: _await_provision,
    Step.SUBMIT.value: _submit,
    Step.AWAIT_RUN.value: _await_run,
    Step.CANCEL_RUN.value: _cancel_run,
    Step.RELEASE.value: _release,
    Step.FINISH.value: _finish,
}


async def recover(ctx: StepContext, job: job_rows.JobSnapshot) -> None:
    """``Provisioner.recover`` for a job that holds a provision, with a loader of its lease's allocation;
    a failure is logged and the step goes on (it then sees what the provisioner knows)."""
    prov = ctx.provisioners.get(job.provisioner)
    if prov is None or not job.provision_id or job.released_attempt >= job.attempt:
        return

    async def allocation() -> Allocation | None:
        return (await _lease(ctx, job)).allocation

    try:
        await prov.recover(job.provision_id, job.run_id, allocation)
    except Exception as exc:
        log.warning("job %s: %s could not recover %s: %r", job.id, job.provisioner, job.provision_id, exc)


async def decide(ctx: StepContext, job: job_rows.JobSnapshot) -> Change:
    """What the claimed job's current step does (the provisioner calls happen here)."""
    if job.reason in (None, Reason.RETRY.value) and (job.cancel_requested or job.expire_requested):
        return Change(teardown_step(job))  # the commit turns this into the teardown
    prov = ctx.provisioners.get(job.provisioner)
    if prov is None:
        error = f"no provisioner {job.provisioner!r} in this worker"
        return Change(
            teardown_step(job), {"error": error}, reason=Reason.FAIL.value, logs=[("planner", error)]
        )
    return await HANDLERS[job.step or Step.FINISH.value](ctx, prov, job)


async def run_claimed(ctx: StepContext, job: job_rows.JobSnapshot) -> job_rows.JobSnapshot | None:
    """Run one claimed step and commit it. Returns the job if the worker still holds it and its next
    step is due now (the caller may go on with it), else None."""
    await recover(ctx, job)
    change = await decide(ctx, job)
    new = await ctx.run_db(lambda: commit(ctx, job, change))
    if new is not None and new.attempt != job.attempt:
        forget_allocations()  # the retry may have moved the lease: the next attempt reads it again
    return new


__all__ = ["HANDLERS", "NEEDS_ALLOCATION", "decide", "run_claimed"]
