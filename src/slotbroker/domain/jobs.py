"""Jobs: work run inside a lease by a provisioner (docs/planner.md).

``pending -> provisioning -> submitted -> running -> succeeded | failed | canceled``, plus ``expired`` when
the lease ends first. A job enters each state at most once (there are no loops: provisioning retries stay
in ``provisioning``), so a transition is recorded once, with its time, and never recomputed on read.

A job's *step* is the next piece of work the planner owes it (the DB queue is the ``step`` column of the
job row itself, so a state change and the enqueue of the next step are one UPDATE in one transaction).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from slotbroker.domain.errors import FieldError, ValidationFailed


class JobState(StrEnum):
    PENDING = "pending"
    PROVISIONING = "provisioning"
    SUBMITTED = "submitted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    EXPIRED = "expired"


TERMINAL: frozenset[JobState] = frozenset(
    {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED, JobState.EXPIRED}
)
_ENDINGS = frozenset({JobState.FAILED, JobState.CANCELED, JobState.EXPIRED})

TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.PENDING: frozenset({JobState.PROVISIONING}) | _ENDINGS,
    JobState.PROVISIONING: frozenset({JobState.SUBMITTED}) | _ENDINGS,
    JobState.SUBMITTED: frozenset({JobState.RUNNING, JobState.SUCCEEDED}) | _ENDINGS,
    JobState.RUNNING: frozenset({JobState.SUCCEEDED}) | _ENDINGS,
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELED: frozenset(),
    JobState.EXPIRED: frozenset(),
}


def can_transition(src: JobState, dst: JobState) -> bool:
    return dst in TRANSITIONS[src]


class Step(StrEnum):
    """The next piece of work owed to a job; ``None`` on the row once the job is terminal."""

    PROVISION = "provision"  # call provision(allocation, key) for the current attempt
    AWAIT_PROVISION = "await_provision"  # poll status(provision_id) until ready / failed / timed out
    SUBMIT = "submit"  # call submit(workload, provision, key)
    AWAIT_RUN = "await_run"  # poll run_status(run_id) until it finishes
    CANCEL_RUN = "cancel_run"  # call cancel(run_id) (cancel, lease end), then release
    RELEASE = "release"  # call release(provision_id) once, then retry or finish (``outcome``)
    FINISH = "finish"  # nothing external left: enter ``outcome``


class Reason(StrEnum):
    """Why a job is being torn down (stored with the teardown so the release step knows where to go)."""

    CANCEL = "cancel"
    EXPIRE = "expire"
    RETRY = "retry"  # a provisioning attempt failed: release it, then try again
    FAIL = "fail"  # a final failure (run failed, attempts exhausted): release, then failed
    SUCCEED = "succeed"  # the run succeeded: release, then succeeded


@dataclass(frozen=True)
class Workload:
    """What to run. ``local`` uses command/args/env; other provisioners read ``extra`` (opaque)."""

    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {"command": list(self.command), "args": list(self.args), "env": self.env, "extra": self.extra},
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Workload:
        data = json.loads(text)
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Workload:
        problems: list[FieldError] = []
        command = data.get("command", [])
        args = data.get("args", [])
        env = data.get("env", {})
        extra = data.get("extra", {})
        if isinstance(command, str):
            command = [command]
        if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
            problems.append(FieldError("/workload/command", "a list of strings"))
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            problems.append(FieldError("/workload/args", "a list of strings"))
        if not isinstance(env, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in env.items()
        ):
            problems.append(FieldError("/workload/env", "an object of string values"))
        if not isinstance(extra, dict):
            problems.append(FieldError("/workload/extra", "an object"))
        if problems:
            raise ValidationFailed("invalid workload", problems)
        return cls(tuple(command), tuple(args), dict(env), dict(extra))

    @property
    def argv(self) -> tuple[str, ...]:
        return (*self.command, *self.args)


@dataclass(frozen=True)
class JobSpec:
    """A request to run ``workload`` inside lease ``lease_id`` with provisioner ``provisioner``.

    ``job_id`` is the idempotency key: creating the same id twice yields one job (the first).
    """

    lease_id: str
    provisioner: str
    workload: Workload
    priority: int = 0
    job_id: str | None = None
    name: str = ""


__all__ = [
    "TERMINAL",
    "TRANSITIONS",
    "JobSpec",
    "JobState",
    "Reason",
    "Step",
    "Workload",
    "can_transition",
]
