"""/v1/jobs: run work inside a lease with a provisioner (the planner, docs/planner.md).

Create (in a lease, or "as soon as possible": find a slot, hold offers, accept the first that still
holds, create the job in the new lease), list (keyset), read, cancel, logs, and the job's state changes
as server-sent events. A caller sees its project's jobs only (404 for the others); admins see all.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Path, Query, Response
from fastapi.responses import StreamingResponse

from slotbroker.api.auth import Reader
from slotbroker.api.problems import responses
from slotbroker.api.routers.deps import services
from slotbroker.bootstrap import Services
from slotbroker.domain.errors import NotFound
from slotbroker.domain.jobs import TERMINAL, JobSpec, JobState
from slotbroker.services.planner import Planner
from slotbroker.services.tokens import Principal, Role
from slotbroker.wire.jobs import (
    CreateJob,
    JobEvent,
    JobList,
    JobLogs,
    JobOut,
    LogLineOut,
    WorkloadBody,
)

router = APIRouter(prefix="/v1", tags=["jobs"], responses=responses(400, 401, 413, 415, 422, 429, 503))
Svc = Annotated[Services, Depends(services)]
JobId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=200,
        description="The job's id, a unique prefix of it (6 characters or more) or its name.",
    ),
]
EVENT_STREAM = "text/event-stream"
POLL_S = 0.25  # how often the event stream reads the job's transitions
KEEPALIVE_S = 15.0  # a comment line this often keeps proxies from closing an idle stream
TERMINAL_STATES = frozenset(s.value for s in TERMINAL)


# -- wire models ---------------------------------------------------------------------------------------------
def scope(who: Principal) -> str | None:
    """The project whose jobs the caller sees; None: every project (admins)."""
    return None if who.role == Role.ADMIN else who.project


def resolve(svc: Services, ref: str, who: Principal) -> str:
    """The full id of the job ``ref`` names for this caller (``services/names.py``)."""
    return svc.names.job(ref, project=scope(who))


def planner_of(svc: Services) -> Planner:
    planner: Planner | None = getattr(svc, "planner", None)
    if planner is None:  # pragma: no cover - the app always builds one
        raise NotFound("the planner is not enabled on this server")
    return planner


# -- routes --------------------------------------------------------------------------------------------------
@router.post(
    "/jobs",
    status_code=201,
    response_model=JobOut,
    responses=responses(403, 404, 409),
    summary="Create a job in a lease, or as soon as possible (offers -> accept -> job)",
)
def create_job(body: CreateJob, who: Reader, svc: Svc, response: Response) -> JobOut:
    planner = planner_of(svc)
    project = scope(who)
    planner.admit(body.provisioner, who.role)  # before offers, a lease or a job are written
    workload = body.workload.domain()
    if body.lease_id is not None:
        spec = JobSpec(
            lease_id=str(body.lease_id),
            provisioner=body.provisioner,
            workload=workload,
            priority=body.priority,
            job_id=body.id,
            name=body.name,
        )
        job = planner.create(spec, project=project, role=who.role)
    else:
        assert body.offer_set is not None
        job = svc.job_asap.create(
            body.offer_set,
            provisioner=body.provisioner,
            workload=workload,
            priority=body.priority,
            job_id=body.id,
            name=body.name,
            project=who.project,
            visible=project,
            role=who.role,
        )
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return job


@router.get("/jobs", response_model=JobList, summary="List jobs, newest first (keyset paging)")
def list_jobs(
    who: Reader,
    svc: Svc,
    state: Annotated[list[JobState] | None, Query(description="Any of these states")] = None,
    project: Annotated[str | None, Query(max_length=200, description="Admins: only this project")] = None,
    lease: Annotated[UUID | None, Query(description="Only jobs of this lease")] = None,
    cursor: Annotated[
        str | None, Query(max_length=200, description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> JobList:
    visible = scope(who)
    if visible is None:
        visible = project
    elif project is not None and project != visible:
        return JobList(items=[], next_cursor=None)
    return planner_of(svc).list(
        limit=limit,
        cursor=cursor,
        states=[s.value for s in state] if state else None,
        project=visible,
        lease_id=None if lease is None else str(lease),
    )


@router.get("/jobs/{job_id}", response_model=JobOut, responses=responses(404))
def get_job(job_id: JobId, who: Reader, svc: Svc) -> JobOut:
    return planner_of(svc).get(resolve(svc, job_id, who), project=scope(who))


@router.post(
    "/jobs/{job_id}/cancel",
    response_model=JobOut,
    responses=responses(404, 409),
    summary="Cancel a job (idempotent): pending at once, otherwise torn down at its next step boundary",
)
def cancel_job(job_id: JobId, who: Reader, svc: Svc) -> JobOut:
    return planner_of(svc).cancel(resolve(svc, job_id, who), project=scope(who))


@router.get("/jobs/{job_id}/logs", response_model=JobLogs, responses=responses(404))
def job_logs(
    job_id: JobId,
    who: Reader,
    svc: Svc,
    after: Annotated[int, Query(ge=0, description="Only lines after this id")] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> JobLogs:
    lines = planner_of(svc).logs(resolve(svc, job_id, who), project=scope(who), after=after, limit=limit)
    nxt = lines[-1].id if len(lines) == limit else None
    return JobLogs(items=lines, next_after=nxt)


@router.get(
    "/jobs/{job_id}/events",
    response_class=StreamingResponse,
    responses={
        **responses(404, 409),
        200: {"content": {EVENT_STREAM: {"schema": {"type": "string"}}}, "description": "SSE stream"},
    },
    summary="The job's state changes as server-sent events, until it is terminal (or timeout)",
)
def job_events(
    job_id: JobId,
    who: Reader,
    svc: Svc,
    timeout: Annotated[float, Query(gt=0, le=3600, description="End the stream after this many s")] = 300,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> StreamingResponse:
    planner = planner_of(svc)
    project = scope(who)
    first = planner.get(resolve(svc, job_id, who), project=project)  # 404 before the stream starts
    start = 0
    if last_event_id is not None and last_event_id.isdigit():
        start = int(last_event_id) + 1
    return StreamingResponse(
        _events(planner, first, project, start, timeout),
        media_type=EVENT_STREAM,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _sse(event: str, data: str, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n".encode()


async def _events(
    planner: Planner, job: JobOut, project: str | None, start: int, timeout: float
) -> AsyncIterator[bytes]:
    """Stream transitions ``start``.. as they are recorded (polling the job every ``POLL_S``); end with
    ``event: end`` once the job is terminal, or ``event: timeout`` after ``timeout`` seconds."""
    sent = start
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    yield b"retry: 1000\n\n"
    while True:
        for index in range(sent, len(job.transitions)):
            t = job.transitions[index]
            data = JobEvent(
                job_id=job.id,
                index=index,
                from_state=t.from_state,
                to_state=t.to_state,
                at=t.at,
                detail=t.detail,
            )
            yield _sse("state", data.model_dump_json(), index)
            quiet_since = time.monotonic()
        sent = max(sent, len(job.transitions))
        if job.state in TERMINAL_STATES:
            yield _sse("end", json.dumps({"job_id": job.id, "state": job.state}))
            return
        if time.monotonic() >= deadline:
            yield _sse("timeout", json.dumps({"job_id": job.id, "state": job.state}))
            return
        await asyncio.sleep(POLL_S)
        if time.monotonic() - quiet_since >= KEEPALIVE_S:
            yield b": keep-alive\n\n"
            quiet_since = time.monotonic()
        try:
            job = await asyncio.to_thread(planner.get, job.id, project=project)
        except NotFound:  # purged meanwhile
            yield _sse("end", json.dumps({"job_id": job.id, "state": "gone"}))
            return


__all__ = [
    "CreateJob",
    "JobEvent",
    "JobList",
    "JobLogs",
    "JobOut",
    "LogLineOut",
    "WorkloadBody",
    "router",
]
