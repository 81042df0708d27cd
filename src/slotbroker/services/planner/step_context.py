"""What every planner step works with: the context a worker runs steps in (database, provisioners,
settings, clock, the lease mover, the enqueue hook) and ``Change``, what a step decided, which the step
boundary (``step_commit.py``) applies. Kept apart so the handlers and the commit share one vocabulary
without importing each other."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from slotbroker.domain.claims import ConsumerStatus
from slotbroker.domain.jobs import JobState, Reason, Step
from slotbroker.services.booking.lease_rehost import Rehost
from slotbroker.services.planner.provisioners.base import Provisioner
from slotbroker.services.planner.settings import PlannerSettings
from slotbroker.store.db import Database
from slotbroker.store.repositories import job_rows
from slotbroker.store.unit_of_work import UnitOfWork

T = TypeVar("T")
KEEP = "__keep__"
LIVE_LEASE = (ConsumerStatus.PENDING.value, ConsumerStatus.ACTIVE.value)
HOLDING_LEASE = (*LIVE_LEASE, ConsumerStatus.ERROR.value)
"""A lease that still holds its capacity (an ERROR lease keeps it until it is cancelled or ends): what a
``lease_scoped`` provision stands for lives while its lease is one of these."""
OUTCOME = {
    Reason.CANCEL.value: JobState.CANCELED,
    Reason.EXPIRE.value: JobState.EXPIRED,
    Reason.FAIL.value: JobState.FAILED,
    Reason.SUCCEED.value: JobState.SUCCEEDED,
}


class DbRunner(Protocol):
    def __call__(self, fn: Callable[[], T], /) -> Awaitable[T]: ...


async def in_thread(fn: Callable[[], T], /) -> T:
    return await asyncio.to_thread(fn)


def wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class StepContext:
    db: Database
    provisioners: Mapping[str, Provisioner]
    settings: PlannerSettings
    worker: str
    clock_ms: Callable[[], int] = wall_ms
    rehost: Rehost | None = None  # moves the lease off failed hosts when a retry commits (None: never)
    run_db: DbRunner = in_thread
    chain: bool = True  # keep the claim and go on when the next step is due at once
    on_enqueue: EnqueueHook | None = None


EnqueueHook = Callable[[UnitOfWork, job_rows.JobSnapshot], None]
"""Called inside the transaction that gives a job its next step (create, each step commit, cancel, lease
events), with the job as written: an external queue (procrastinate) defers its task here, in the same
transaction, so the state change and the enqueue commit together or not at all. Not called for steps
the committing worker keeps and runs at once (``chain``)."""


@dataclass
class Change:
    """What a step decided; ``commit`` applies it (after the cancel / expire check)."""

    step: Step
    values: dict[str, Any] = field(default_factory=dict)
    delay_s: float = 0.0
    enter: tuple[JobState, ...] = ()
    reason: str | None = KEEP
    logs: list[tuple[str, str]] = field(default_factory=list)


def key_of(job: job_rows.JobSnapshot) -> str:
    return f"{job.id}#{job.attempt}"


def teardown_step(job: job_rows.JobSnapshot) -> Step:
    if job.run_id and not job.run_stopped:
        return Step.CANCEL_RUN
    if job.provision_id and job.released_attempt < job.attempt:
        return Step.RELEASE
    return Step.FINISH


__all__ = [
    "KEEP",
    "LIVE_LEASE",
    "OUTCOME",
    "Change",
    "DbRunner",
    "EnqueueHook",
    "StepContext",
    "in_thread",
    "key_of",
    "teardown_step",
    "wall_ms",
]
