"""/v1/find-slot (with jobs for long queries) and /v1/calendar."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Response
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, AwareDatetime, Field

from slotbroker.api.auth import Reader
from slotbroker.api.problems import responses
from slotbroker.api.routers.deps import Lane, services
from slotbroker.bootstrap import Services
from slotbroker.domain.limits import check_instant
from slotbroker.domain.time import to_datetime
from slotbroker.engine import Bucket
from slotbroker.wire.calendar import CalendarResponse, CalendarRow
from slotbroker.wire.find_slot import FindSlotJob, FindSlotResult

FIND_SLOT_PATH = "/v1/find-slot"  # the route below, under the router's prefix
router = APIRouter(prefix="/v1", tags=["find-slot"], responses=responses(400, 401, 413, 415, 422, 429, 503))
Svc = Annotated[Services, Depends(services)]

SLOT_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SlotRequest"}}},
    }
}


@router.post(
    "/find-slot",
    response_model=FindSlotResult,
    openapi_extra=SLOT_REQUEST_BODY,
    responses={
        202: {"model": FindSlotJob, "description": "Accepted: a long query runs as a job; poll Location"}
    },
    summary="Find windows where a multi-component request fits",
)
async def find_slot(
    who: Reader,
    svc: Svc,
    lane: Lane,
    body: Annotated[dict[str, Any], Body()],
    prefer: Annotated[str | None, Header(description="`respond-async` forces a job")] = None,
) -> Response:
    # in the app's find-slot lane (api/find_slot_lane.py), as the fast path's; a docstring would be
    # the operation's OpenAPI description
    return find_slot_response(await lane.answer(svc, body, project=who.project, job=wants_job(prefer)))


def wants_job(prefer: str | None) -> bool:
    """``Prefer: respond-async`` (RFC 7240) asks for a job whatever the search would cost."""
    return bool(prefer and "respond-async" in prefer.lower())


def find_slot_response(answer: FindSlotResult | FindSlotJob) -> Response:
    """The route's response, shared with ``api/find_slot_fast_path.py``: an answer serialised once
    (pydantic, in Rust) instead of re-validated against the response model, or a job's 202."""
    if isinstance(answer, FindSlotJob):
        headers = {"Location": f"/v1/find-slot/jobs/{answer.id}", "Retry-After": "1"}
        return JSONResponse(answer.model_dump(mode="json"), status_code=202, headers=headers)
    return Response(answer.model_dump_json(), media_type="application/json")


@router.get("/find-slot/jobs/{job_id}", response_model=FindSlotJob, responses=responses(404))
def find_slot_job(
    job_id: Annotated[str, Field(max_length=36)], who: Reader, svc: Svc, response: Response
) -> FindSlotJob:
    job = svc.find_slot.job(job_id, project=None if who.role == "admin" else who.project)
    if job.status in ("pending", "running"):
        response.headers["Retry-After"] = "1"  # when to poll again
    return job


@router.get(
    "/calendar",
    response_model=CalendarResponse,
    tags=["calendar"],
    summary="Capacity, peak usage and free per host, site, link and port over time",
)
def calendar(
    who: Reader,
    svc: Svc,
    start: Annotated[AwareDatetime, Query(description="ISO 8601 with offset"), AfterValidator(check_instant)],
    end: Annotated[AwareDatetime, Query(description="ISO 8601 with offset"), AfterValidator(check_instant)],
    resolution: Bucket = Bucket.DAY,
    kind: Annotated[list[str] | None, Query(description="host, site, link, facility_port")] = None,
    name: Annotated[list[str] | None, Query(description="Only these providers")] = None,
    resource_class: Annotated[list[str] | None, Query()] = None,
) -> CalendarResponse:
    kinds = frozenset(kind or ["host", "site", "link", "facility_port"])
    view = svc.find_slot.calendar_view(int(start.timestamp()), int(end.timestamp()), resolution, kinds)
    rows = [
        CalendarRow(
            kind=r.kind,
            name=r.name,
            resource_class=r.resource_class,
            capacity=r.capacity,
            used=list(r.used),
            free=list(r.free),
        )
        for r in view.rows
        if (not name or r.name in name) and (not resource_class or r.resource_class in resource_class)
    ]
    return CalendarResponse(
        resolution=resolution, bucket_s=view.bucket_s, starts=[to_datetime(s) for s in view.starts], rows=rows
    )
