"""A stored job as the one wire shape every adapter shows (``wire.jobs.JobOut``): the only mapping from
the store's job rows to what callers see."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from slotbroker.domain.jobs import JobState, Workload
from slotbroker.store.repositories import job_rows
from slotbroker.wire.jobs import JobOut, LogLineOut, TransitionOut, WorkloadBody


def at_ms(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def job_out(
    job: job_rows.JobSnapshot, transitions: Sequence[tuple[str | None, str, int, str]] = ()
) -> JobOut:
    """A stored job (and its transitions, oldest first)."""
    w = Workload.from_json(job.workload)
    return JobOut(
        id=job.id,
        name=job.name,
        project=job.project,
        lease_id=job.lease_uuid,
        provisioner=job.provisioner,
        priority=job.priority,
        state=JobState(job.state),
        workload=WorkloadBody(command=list(w.command), args=list(w.args), env=w.env, extra=w.extra),
        attempt=job.attempt,
        provision_id=job.provision_id,
        run_id=job.run_id,
        exit_code=job.exit_code,
        error=job.error,
        cancel_requested=job.cancel_requested,
        created_at=at_ms(job.created_ms) or datetime.now(UTC),
        updated_at=at_ms(job.updated_ms) or datetime.now(UTC),
        finished_at=at_ms(job.finished_ms),
        transitions=[
            TransitionOut(from_state=f, to_state=t, at=at_ms(at) or datetime.now(UTC), detail=d)
            for f, t, at, d in transitions
        ],
        tried_hosts=sorted(job_rows.hosts_of(job)),
        href=f"/v1/jobs/{job.id}",
    )


def log_line_out(row: tuple[int, int, str, str]) -> LogLineOut:
    i, at, stream, line = row
    return LogLineOut(id=i, at=at_ms(at) or datetime.now(UTC), stream=stream, line=line)


__all__ = ["at_ms", "job_out", "log_line_out"]
