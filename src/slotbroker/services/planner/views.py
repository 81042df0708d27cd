"""What the planner's use cases answer with: a job as its callers see it, its transitions and log lines
(plain data; the wire models are built from these)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from slotbroker.domain.jobs import Workload
from slotbroker.store.repositories import job_rows


def at_ms(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


@dataclass(frozen=True)
class Transition:
    from_state: str | None
    to_state: str
    at: datetime
    detail: str


@dataclass(frozen=True)
class JobView:
    id: str
    name: str
    project: str
    lease_id: str
    provisioner: str
    priority: int
    state: str
    workload: Workload
    attempt: int
    provision_id: str | None
    run_id: str | None
    exit_code: int | None
    error: str | None
    cancel_requested: bool
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    transitions: tuple[Transition, ...] = ()
    tried_hosts: tuple[str, ...] = ()  # uuids of the hosts failed attempts ran on (the lease moved off)

    @classmethod
    def of(
        cls, job: job_rows.JobSnapshot, transitions: Sequence[tuple[str | None, str, int, str]] = ()
    ) -> JobView:
        return cls(
            id=job.id,
            name=job.name,
            project=job.project,
            lease_id=job.lease_uuid,
            provisioner=job.provisioner,
            priority=job.priority,
            state=job.state,
            workload=Workload.from_json(job.workload),
            attempt=job.attempt,
            provision_id=job.provision_id,
            run_id=job.run_id,
            exit_code=job.exit_code,
            error=job.error,
            cancel_requested=job.cancel_requested,
            created_at=at_ms(job.created_ms) or datetime.now(UTC),
            updated_at=at_ms(job.updated_ms) or datetime.now(UTC),
            finished_at=at_ms(job.finished_ms),
            transitions=tuple(
                Transition(f, t, at_ms(at) or datetime.now(UTC), d) for f, t, at, d in transitions
            ),
            tried_hosts=tuple(sorted(job_rows.hosts_of(job))),
        )


@dataclass(frozen=True)
class JobPage:
    items: tuple[JobView, ...]
    next_cursor: str | None


@dataclass(frozen=True)
class LogLine:
    id: int
    at: datetime
    stream: str
    line: str


__all__ = ["JobPage", "JobView", "LogLine", "Transition", "at_ms"]
