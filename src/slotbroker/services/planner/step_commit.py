"""The step boundary: one transaction that checks the worker still holds the job's claim, checks the
cancel / expire flags in that same transaction, and writes the state change with the next step (the job
row is the queue). A retry that moves the lease off failed hosts moves it in that transaction too."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from slotbroker.domain.errors import ConcurrentUpdate
from slotbroker.domain.jobs import Reason, Step
from slotbroker.services.planner.step_context import KEEP, OUTCOME, Change, StepContext, teardown_step
from slotbroker.services.retry import MAX_ATTEMPTS, retrying
from slotbroker.store.repositories import job_rows
from slotbroker.store.unit_of_work import UnitOfWork

log = logging.getLogger("slotbroker.planner")


def commit(ctx: StepContext, job: job_rows.JobSnapshot, change: Change) -> job_rows.JobSnapshot | None:
    """The step boundary: one transaction that checks the claim is still ours, checks the cancel / expire
    flags, and writes the state change with the next step.

    Fast path: one guarded UPDATE (``claim is ours AND no cancel AND no expiry``) planned from the
    claimed snapshot - nobody else writes a claimed job except to raise those flags. If it matches no row,
    the slow path locks the row, re-reads it and plans again (a raised flag turns into the teardown).

    A retry that moves the lease (``_moving``) locks the lease, then the job, and moves the lease in the
    same transaction (no alternate with room: the job fails instead). Lock waits there can end in a
    deadlock or serialization failure, so that transaction is retried whole; if it keeps losing, the
    retry is parked (``_parked``) rather than dropped, and no release is ever repeated.
    """
    if not _moving(ctx, job, change):
        return _commit(ctx, job, change, moving=False)
    try:
        return retrying(lambda _n: _commit(ctx, job, change, moving=True), MAX_ATTEMPTS)
    except ConcurrentUpdate:
        log.warning("job %s: moving lease %s keeps losing to concurrent writers", job.id, job.lease_uuid)
        return _commit(ctx, job, _parked(ctx, job, change), moving=False)


def _commit(
    ctx: StepContext, job: job_rows.JobSnapshot, change: Change, *, moving: bool
) -> job_rows.JobSnapshot | None:
    now = ctx.clock_ms()
    with UnitOfWork(ctx.db) as uow:
        new: job_rows.JobSnapshot | None = None
        if moving:
            uow.jobs.lock_lease(job.lease_uuid)  # before the job row: the lease writers' order
        elif not (job.cancel_requested or job.expire_requested):
            write = _write_of(ctx, job, change, now)
            new = uow.jobs.write_claimed(job, ctx.worker, write.values)
        if new is None:
            fresh = uow.jobs.lock_for_commit(job.seq, job.version, ctx.worker)
            if fresh is None:
                log.info("job %s: claim lost before commit; result of step %s dropped", job.id, job.step)
                return None
            write = _write_of(ctx, fresh, change, now)
            if moving and "attempt" in write.values:  # still a retry (no cancel / expiry came first)
                write = _move(ctx, uow, fresh, change, write, now)
            new = uow.jobs.write(fresh, write.values)
        uow.jobs.logs.add_transitions(write.transitions)
        uow.jobs.logs.add_lines(job.seq, now, write.logs)
        if ctx.on_enqueue is not None and new.step is not None and not write.keep:
            ctx.on_enqueue(uow, new)
        uow.commit()
    return new if write.keep else None


# What only a retry writes (a retry turned into a failure, or parked, leaves these alone).
_RETRY_ONLY = ("attempt", "provision_id", "run_id", "run_stopped")


def _moving(ctx: StepContext, job: job_rows.JobSnapshot, change: Change) -> bool:
    """Does committing ``change`` move the lease? Only a retry does, and only if the provisioner's
    ``retry.alternates`` allows it (else it retries on the same allocation)."""
    alternates = ctx.settings.policy(job.provisioner).retry.alternates
    return ctx.rehost is not None and alternates and "attempt" in change.values


def _move(
    ctx: StepContext, uow: UnitOfWork, fresh: job_rows.JobSnapshot, change: Change, write: _Write, now: int
) -> _Write:
    """Move the lease off the hosts this attempt used (and never back onto those of earlier attempts),
    then let the retry go ahead; if some host has no alternate with room the retry becomes a failure.
    A lease that other jobs use right now is not moved (their work runs on its hosts): the retry stays."""
    assert ctx.rehost is not None
    busy = uow.jobs.others_under_way(fresh.lease_uuid, fresh.seq, now)
    if busy:  # moving would pull the capacity from under them: retry in place
        write.logs.append(("planner", f"lease in use by job {', '.join(busy)}: retrying on the same hosts"))
        return write
    tried = job_rows.hosts_of(fresh)
    moved = ctx.rehost(uow.jobs.connection, fresh.lease_uuid, tried, now // 1000)
    if moved is None:
        error = f"{change.values.get('error') or fresh.error}; no alternate host had capacity"
        values = {k: v for k, v in change.values.items() if k not in _RETRY_ONLY}
        values["error"] = error
        line = f"no alternate host had capacity for lease {fresh.lease_uuid}; giving up"
        failed = Change(Step.FINISH, values, reason=Reason.FAIL.value, logs=[*change.logs, ("planner", line)])
        return _write_of(ctx, fresh, failed, now)
    if moved.moves:
        write.values["tried_hosts"] = job_rows.hosts_json(tried | moved.left)
        write.logs.append(("planner", f"lease {fresh.lease_uuid} moved: {moved.describe()}"))
    else:
        write.logs.append(("planner", f"lease not moved ({moved.reason}): retrying on the same hosts"))
    return write


def _parked(ctx: StepContext, job: job_rows.JobSnapshot, change: Change) -> Change:
    """A retry whose move could not be committed waits at ``release`` (reason ``retry``) with what it
    released recorded: the release step has nothing left to release and plans the retry - and the
    move - again after ``poll_interval_s``."""
    values = {k: v for k, v in change.values.items() if k not in _RETRY_ONLY}
    line = ("planner", "moving the lease lost to concurrent writers; the retry waits")
    delay = ctx.settings.policy(job.provisioner).poll_interval_s
    return Change(Step.RELEASE, values, delay_s=delay, reason=Reason.RETRY.value, logs=[*change.logs, line])


@dataclass
class _Write:
    values: dict[str, Any]
    transitions: list[tuple[int, str | None, str, int, str]]
    logs: list[tuple[str, str]]
    keep: bool


def _write_of(ctx: StepContext, fresh: job_rows.JobSnapshot, change: Change, now: int) -> _Write:
    """The row values, transitions and log lines ``change`` makes of ``fresh`` (a raised cancel / expire
    flag overrides a forward step with the teardown)."""
    values = dict(change.values)
    reason = fresh.reason if change.reason == KEEP else change.reason
    step, delay, enter, logs = change.step, change.delay_s, change.enter, list(change.logs)
    if (fresh.cancel_requested or fresh.expire_requested) and reason in (None, Reason.RETRY.value):
        reason = Reason.CANCEL.value if fresh.cancel_requested else Reason.EXPIRE.value
        values.pop("attempt", None)  # no new attempt once the job is being torn down
        step, delay, enter = teardown_step(job_rows.replace(fresh, values)), 0.0, ()
        what = "cancel" if reason == Reason.CANCEL.value else "lease end"
        logs.append(("planner", f"{what}: tearing down"))
    transitions: list[tuple[int, str | None, str, int, str]] = []
    state = fresh.state
    for nxt in enter:
        transitions.append((fresh.seq, state, nxt.value, now, ""))
        state = nxt.value
    keep = False
    if step is Step.FINISH:
        final = OUTCOME[reason or Reason.FAIL.value].value
        transitions.append((fresh.seq, state, final, now, values.get("error") or fresh.error or ""))
        values.update(state=final, step=None, finished_ms=now, claimed_by=None, claimed_until_ms=None)
    else:
        keep = ctx.chain and delay <= 0
        values.update(
            state=state,
            step=step.value,
            due_ms=now + int(delay * 1000),
            claimed_by=ctx.worker if keep else None,
            claimed_until_ms=now + int(ctx.settings.claim_ttl_s * 1000) if keep else None,
        )
    values.update(reason=reason, updated_ms=now)
    return _Write(values, transitions, logs, keep)


def unclaim(ctx: StepContext, job: job_rows.JobSnapshot, delay_s: float) -> bool:
    """Give a step back after an unexpected error (it runs again after ``delay_s``)."""
    now = ctx.clock_ms()
    with UnitOfWork(ctx.db) as uow:
        fresh = uow.jobs.lock_for_commit(job.seq, job.version, ctx.worker)
        if fresh is None:
            return False
        uow.jobs.write(
            fresh,
            {
                "claimed_by": None,
                "claimed_until_ms": None,
                "due_ms": now + int(delay_s * 1000),
                "updated_ms": now,
            },
        )
        uow.commit()
    return True


__all__ = ["commit", "unclaim"]
