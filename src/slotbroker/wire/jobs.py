"""Wire models of the jobs API: what ``POST /v1/jobs`` reads and the one shape of a job everyone returns.

The planner answers in these models (``services/planner/service.py: job_out`` maps a stored job once),
so the server, the CLI and the Python client show a job alike."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from slotbroker.domain.jobs import JobState, Workload
from slotbroker.domain.strict import Int
from slotbroker.wire.display import Tabular
from slotbroker.wire.offers import OfferSetRequest


class WorkloadBody(BaseModel):
    """What to run: ``local`` runs ``command + args`` with ``env``; other provisioners read ``extra``."""

    model_config = ConfigDict(extra="forbid")

    command: list[Annotated[str, Field(max_length=4096)]] = Field(default_factory=list, max_length=256)
    args: list[Annotated[str, Field(max_length=4096)]] = Field(default_factory=list, max_length=1024)
    env: dict[str, str] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)

    def domain(self) -> Workload:
        return Workload(tuple(self.command), tuple(self.args), dict(self.env), dict(self.extra))


class CreateJob(BaseModel):
    """``POST /v1/jobs``: exactly one of ``lease_id`` (run in that lease) or ``offer_set`` (as soon as
    possible: a find-slot request whose first acceptable offer becomes the job's lease)."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(
        None, min_length=1, max_length=64, description="Idempotency key: the same id again is the same job."
    )
    name: str = Field("", max_length=200)
    lease_id: UUID | None = None
    offer_set: OfferSetRequest | None = Field(
        None, description="As soon as possible: offers are made and the first that holds is accepted."
    )
    provisioner: str = Field(min_length=1, max_length=100)
    workload: WorkloadBody = Field(default_factory=WorkloadBody)
    priority: Int = Field(0, ge=-1000, le=1000)

    @model_validator(mode="after")
    def _one_target(self) -> CreateJob:
        if (self.lease_id is None) == (self.offer_set is None):
            raise ValueError("give exactly one of lease_id and offer_set")
        return self


class TransitionOut(BaseModel):
    from_state: str | None
    to_state: str
    at: datetime
    detail: str


class JobOut(Tabular, BaseModel):
    id: str
    name: str
    project: str
    lease_id: str
    provisioner: str
    priority: int
    state: JobState
    workload: WorkloadBody
    attempt: int
    provision_id: str | None
    run_id: str | None
    exit_code: int | None
    error: str | None
    cancel_requested: bool
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    transitions: list[TransitionOut] = Field(default_factory=list)
    tried_hosts: list[str] = Field(
        default_factory=list,
        description="Provider uuids of hosts a failed provisioning attempt ran on; retries moved the "
        "lease off them (docs/planner.md).",
    )
    href: str

    def records(self) -> list[dict[str, Any]]:
        return [
            {
                "job": self.id,
                "name": self.name,
                "state": self.state,
                "lease": self.lease_id,
                "provisioner": self.provisioner,
                "attempt": self.attempt,
                "exit_code": self.exit_code,
                "created_at": self.created_at,
            }
        ]


class JobList(Tabular, BaseModel):
    items: list[JobOut]
    next_cursor: str | None = Field(description="Pass back as cursor for the next (older) page.")

    def records(self) -> list[dict[str, Any]]:
        return [row for job in self.items for row in job.records()]


class LogLineOut(BaseModel):
    id: int
    at: datetime
    stream: str
    line: str


class JobLogs(BaseModel):
    items: list[LogLineOut]
    next_after: int | None = Field(description="Pass back as after for the next lines; null: no more now.")


class JobEvent(BaseModel):
    """One server-sent event's data: the job entered ``to_state`` (``event: state``)."""

    job_id: str
    index: int = Field(description="Position in the job's transitions (the SSE id).")
    from_state: str | None
    to_state: str
    at: datetime
    detail: str
