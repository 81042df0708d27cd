"""A planner job row as read (``JobSnapshot``, immutable) and what is computed from one: the hosts its
failed attempts used, a copy with some values changed, the listing cursor, the claimable predicate."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import and_, or_

from slotbroker.domain.errors import FieldError, ValidationFailed
from slotbroker.domain.jobs import TERMINAL, JobState
from slotbroker.store import tables

jobs = tables.jobs

ACTIVE_STATES = (JobState.PROVISIONING.value, JobState.SUBMITTED.value, JobState.RUNNING.value)
TERMINAL_STATES = tuple(s.value for s in TERMINAL)


@dataclass(frozen=True)
class JobSnapshot:
    """A job row as read (immutable; a commit writes a new version through ``JobRepository``)."""

    seq: int
    id: str
    name: str
    project: str
    lease_uuid: str
    provisioner: str
    priority: int
    workload: str
    state: str
    step: str | None
    due_ms: int
    claimed_by: str | None
    claimed_until_ms: int | None
    version: int
    cancel_requested: bool
    expire_requested: bool
    reason: str | None
    attempt: int
    provision_id: str | None
    provision_started_ms: int | None
    released_attempt: int
    releases: int
    run_id: str | None
    run_stopped: bool
    exit_code: int | None
    error: str | None
    created_ms: int
    updated_ms: int
    finished_ms: int | None
    tried_hosts: str | None  # JSON list of host uuids (``hosts_of`` / ``hosts_json``)

    @classmethod
    def of(cls, row: Any) -> JobSnapshot:
        m = row._mapping
        return cls(**{f.name: m[f.name] for f in fields(cls)})

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES


def hosts_of(job: JobSnapshot) -> frozenset[str]:
    """The hosts (uuids) the job's failed attempts ran on."""
    return frozenset(json.loads(job.tried_hosts)) if job.tried_hosts else frozenset()


def hosts_json(hosts: Iterable[str]) -> str:
    return json.dumps(sorted(set(hosts)))


def replace(job: JobSnapshot, values: dict[str, Any]) -> JobSnapshot:
    data = {f.name: getattr(job, f.name) for f in fields(JobSnapshot)}
    data.update({k: v for k, v in values.items() if k in data})
    return JobSnapshot(**data)


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"j{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("j"):
            raise ValueError(raw)
        return int(raw[1:])
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ValidationFailed(
            "invalid cursor", [FieldError("#/query/cursor", "not a cursor we issued")]
        ) from exc


def claimable(now_ms: int, provisioners: Sequence[str] | None = None) -> Any:
    """Due, unclaimed (or claim run out) steps - of ``provisioners`` only, if given: a worker never
    takes a job whose provisioner it does not have (a fleet may run plugins on some workers only)."""
    cond = and_(
        jobs.c.step.is_not(None),
        jobs.c.due_ms <= now_ms,
        or_(jobs.c.claimed_until_ms.is_(None), jobs.c.claimed_until_ms < now_ms),
    )
    return cond if provisioners is None else and_(cond, jobs.c.provisioner.in_(list(provisioners)))


# Columns a step may change (``cancel_requested`` and ``provision_started_ms`` are not among them).
STEP_COLUMNS = (
    "state",
    "step",
    "due_ms",
    "claimed_by",
    "claimed_until_ms",
    "version",
    "reason",
    "attempt",
    "provision_id",
    "released_attempt",
    "releases",
    "run_id",
    "run_stopped",
    "exit_code",
    "error",
    "expire_requested",
    "updated_ms",
    "finished_ms",
    "tried_hosts",
)
