"""Startup reconciliation: jobs left under way by a previous run are checked with their provisioner.

A pool starting up claims the jobs in provisioning / submitted / running that no live worker holds
(with ``takeover``, all of them: an embedded single-process deployment knows no one else can hold them)
and asks the provisioner where each one is:

* a run it knows: finished -> record the result and release; running -> keep polling;
* a run it does not know (lost with the provisioner's restart) -> failed, then released;
* a provision it knows: ready -> submit (idempotent by the job id); pending -> keep waiting, under the
  same readiness timeout (it counts from the original request);
* a provision it does not know, failed or released -> a failed attempt: released (idempotent) and
  retried or failed by the retry policy;
* no provision id yet (the worker died inside ``provision``) -> provision again with the same key,
  which returns the provision if it was made;
* jobs already being torn down (cancel, lease end, release) go on with their teardown.

Each decision is committed through the same step boundary as any step (``step_commit.commit``), so a cancel
that arrived meanwhile still wins.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from slotbroker.domain.jobs import Reason, Step
from slotbroker.services.planner.provisioners.base import RUN_DONE, ProvisionPhase, RunPhase, RunStatus
from slotbroker.services.planner.step_commit import commit
from slotbroker.services.planner.step_context import Change, StepContext
from slotbroker.services.planner.steps import _failed_attempt, _run_finished, recover
from slotbroker.store.repositories.job_rows import JobSnapshot
from slotbroker.store.unit_of_work import UnitOfWork

log = logging.getLogger("slotbroker.planner")

TEARDOWN = (Step.CANCEL_RUN.value, Step.RELEASE.value, Step.FINISH.value)


@dataclass
class ReconcileReport:
    checked: int = 0
    continued: int = 0
    failed_attempts: int = 0
    lost_runs: int = 0


async def inspect(ctx: StepContext, job: JobSnapshot, report: ReconcileReport) -> Change:
    note = ("planner", "reconciled after restart")
    prov = ctx.provisioners.get(job.provisioner)
    await recover(ctx, job)  # a provisioner whose runs outlive a restart learns them again
    if prov is None or job.step in TEARDOWN or job.reason not in (None, Reason.RETRY.value):
        return Change(Step(job.step or Step.FINISH.value), logs=[note])
    if job.run_id:
        rs = await prov.run_status(job.run_id)
        if rs.phase in RUN_DONE:
            return _run_finished(ctx, job, rs, ())
        if rs.phase is RunPhase.UNKNOWN:
            report.lost_runs += 1
            lost = RunStatus(RunPhase.UNKNOWN, None, (), "lost across a restart")
            return _run_finished(ctx, job, lost, ())
        report.continued += 1
        return Change(Step.AWAIT_RUN, logs=[note])
    if job.provision_id:
        st = await prov.status(job.provision_id)
        if st.phase is ProvisionPhase.READY:
            report.continued += 1
            return Change(Step.SUBMIT, logs=[note])
        if st.phase is ProvisionPhase.PENDING:
            report.continued += 1
            return Change(Step.AWAIT_PROVISION, logs=[note])
        report.failed_attempts += 1
        error = f"provision {job.provision_id} {st.phase.value} after restart"
        return _failed_attempt(ctx, job, error, job.provision_id)
    report.continued += 1
    return Change(Step.PROVISION, logs=[note])


async def reconcile(ctx: StepContext, *, takeover: bool = False, batch: int = 200) -> ReconcileReport:
    """Reconcile every unattended job under way; returns what was found."""
    ctx = dataclasses.replace(ctx, chain=False)
    report = ReconcileReport()
    after = 0
    while True:

        def claim(after: int = after) -> list[JobSnapshot]:
            now = ctx.clock_ms()
            with UnitOfWork(ctx.db) as uow:
                claimed = uow.jobs.claims.unattended(
                    now_ms=now,
                    worker=ctx.worker,
                    until_ms=now + int(ctx.settings.claim_ttl_s * 1000),
                    limit=batch,
                    takeover=takeover,
                    after_seq=after,
                    provisioners=sorted(ctx.provisioners),
                )
                uow.commit()
            return claimed

        jobs = await ctx.run_db(claim)
        if not jobs:
            return report
        for job in jobs:
            report.checked += 1
            try:
                change = await inspect(ctx, job, report)
            except Exception:
                log.exception("reconciling job %s failed; it is retried by the queue", job.id)
                change = Change(Step(job.step or Step.FINISH.value))
            await ctx.run_db(lambda job=job, change=change: commit(ctx, job, change))  # type: ignore[misc]
        after = jobs[-1].seq
        if len(jobs) < batch:
            return report


__all__ = ["ReconcileReport", "inspect", "reconcile"]
