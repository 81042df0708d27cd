"""/v1/leases (create, list, read, change, compact, cancel, iCalendar feed) and /v1/quotas (admin)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import AwareDatetime

from slotbroker.api.auth import Admin, Reader
from slotbroker.api.problems import responses
from slotbroker.api.routers.deps import services
from slotbroker.bootstrap import Services
from slotbroker.domain.errors import Ambiguous, FieldError, Forbidden, NotFound, ValidationFailed
from slotbroker.domain.resource_classes import naming_problem
from slotbroker.domain.time import to_epoch
from slotbroker.services.access.tokens import Principal, Role
from slotbroker.wire.leases import (
    CompactionReport,
    CompactLease,
    CompactLeases,
    CreateLease,
    LeaseCompaction,
    LeaseList,
    LeaseView,
    QuotaView,
    SetQuota,
    UpdateLease,
)

router = APIRouter(tags=["leases"], responses=responses(400, 401, 413, 415, 422, 429, 503))
Svc = Annotated[Services, Depends(services)]
LeaseRef = Annotated[
    str,
    Path(
        min_length=1,
        max_length=200,
        description="The lease's id, a unique prefix of it (6 characters or more) or its name.",
        examples=["3fa85f64", "gpu-run"],
    ),
]
Force = Annotated[
    bool,
    Query(
        description="Cancel even though jobs are still running in the lease (they are stopped); without "
        "it such a cancel is refused with 409 jobs_running naming them."
    ),
]
RC_PATH = r"^[A-Z][A-Z0-9_]{0,254}$"
PROJECT_PATH = r"^[^/]{1,200}$"
ICAL_TYPE = "text/calendar; charset=utf-8"


class LeaseStatus(StrEnum):
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    ENDED = "ENDED"
    CANCELLED = "CANCELLED"
    ERROR = "ERROR"


def scope(who: Principal) -> str | None:
    """The project whose leases the caller sees; None: every project (admins)."""
    return None if who.role == Role.ADMIN else who.project


@router.post(
    "/v1/leases",
    status_code=201,
    response_model=LeaseView,
    responses=responses(403, 409),
    summary="Create a lease from explicit items",
)
def create_lease(body: CreateLease, who: Reader, svc: Svc, response: Response) -> LeaseView:
    project = body.project or who.project
    if project != who.project and who.role != Role.ADMIN:
        raise Forbidden(
            "only admins create leases for other projects",
            [FieldError("/project", f"your project is {who.project}")],
        )
    view = svc.leases.create(body, project=project)
    response.headers["Location"] = f"/v1/leases/{view.id}"
    return view


@router.get("/v1/leases", response_model=LeaseList, summary="List leases, newest first (keyset paging)")
def list_leases(
    who: Reader,
    svc: Svc,
    status: Annotated[list[LeaseStatus] | None, Query(description="Any of these statuses")] = None,
    project: Annotated[
        str | None, Query(max_length=200, description="Admins: only this project's leases")
    ] = None,
    start: Annotated[AwareDatetime | None, Query(description="Only leases ending after this")] = None,
    end: Annotated[AwareDatetime | None, Query(description="Only leases starting before this")] = None,
    cursor: Annotated[
        str | None, Query(max_length=200, description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    name: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="Only leases whose name or id starts with this (any case)",
        ),
    ] = None,
    site: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="Only leases holding a host or facility port of this site, or a link ending there",
        ),
    ] = None,
) -> LeaseList:
    visible = scope(who)
    if visible is None:
        visible = project
    elif project is not None and project != visible:
        return LeaseList(items=[], next_cursor=None)
    return svc.leases.list(
        project=visible,
        status=[s.value for s in status] if status else None,
        start_s=None if start is None else to_epoch(start),
        end_s=None if end is None else to_epoch(end),
        cursor=cursor,
        limit=limit,
        named=name,
        site=site,
    )


@router.get(
    "/v1/leases.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {"schema": {"type": "string"}}}}},
    summary="The caller's leases as an iCalendar (RFC 5545) feed",
)
def leases_ical(
    who: Reader,
    svc: Svc,
    status: Annotated[list[LeaseStatus] | None, Query(description="Any of these statuses")] = None,
) -> Response:
    body = svc.leases.ical(project=scope(who), status=[s.value for s in status] if status else None)
    return Response(body.encode(), media_type=ICAL_TYPE)


def resolve(svc: Services, ref: str, who: Principal) -> str:
    """The full id of the lease ``ref`` names for this caller (``services/names.py``)."""
    return svc.names.lease(ref, project=scope(who))


@router.get(
    "/v1/leases/{lease_id}.ics",
    response_class=Response,
    responses={**responses(404, 409), 200: {"content": {"text/calendar": {"schema": {"type": "string"}}}}},
    summary="One lease as an iCalendar (RFC 5545) event",
)
def lease_ical(lease_id: LeaseRef, who: Reader, svc: Svc) -> Response:
    body = svc.leases.ical_one(resolve(svc, lease_id, who), project=scope(who))
    return Response(body.encode(), media_type=ICAL_TYPE)


@router.get("/v1/leases/{lease_id}", response_model=LeaseView, responses=responses(404, 409))
def get_lease(lease_id: LeaseRef, who: Reader, svc: Svc) -> LeaseView:
    return svc.leases.get(resolve(svc, lease_id, who), project=scope(who))


@router.patch(
    "/v1/leases/{lease_id}",
    response_model=LeaseView,
    responses=responses(403, 404, 409),
    summary="Extend, shorten, move (PENDING) or rename a lease; compare-and-swap on generation",
)
def update_lease(lease_id: LeaseRef, body: UpdateLease, who: Reader, svc: Svc) -> LeaseView:
    return svc.leases.update(resolve(svc, lease_id, who), body, project=scope(who))


@router.post(
    "/v1/leases/{lease_id}/cancel",
    response_model=LeaseView,
    responses=responses(404, 409),
    summary="Cancel a lease: its capacity is released at once (idempotent); force=true if jobs run in it",
)
def cancel_lease(lease_id: LeaseRef, who: Reader, svc: Svc, force: Force = False) -> LeaseView:
    return svc.lease_cancel.cancel(resolve(svc, lease_id, who), project=scope(who), force=force)


@router.delete(
    "/v1/leases/{lease_id}",
    status_code=204,
    responses=responses(404, 409),
    summary="Cancel a lease (same as POST .../cancel)",
)
def delete_lease(lease_id: LeaseRef, who: Reader, svc: Svc, force: Force = False) -> Response:
    svc.lease_cancel.cancel(resolve(svc, lease_id, who), project=scope(who), force=force)
    return Response(status_code=204)


@router.post(
    "/v1/leases/{lease_id}/compact",
    response_model=LeaseCompaction,
    responses=responses(403, 404, 409),
    summary="Move a PENDING lease to its earliest possible start (never later; as if it were gone)",
)
def compact_lease(lease_id: LeaseRef, body: CompactLease, who: Reader, svc: Svc) -> LeaseCompaction:
    return svc.compaction.compact(resolve(svc, lease_id, who), body, project=scope(who))


@router.post(
    "/v1/leases/compact",
    response_model=CompactionReport,
    responses=responses(404, 409),
    summary="Compact several PENDING leases (given, or your project's in start order), each on its own",
)
def compact_leases(body: CompactLeases, who: Reader, svc: Svc) -> CompactionReport:
    if body.leases is not None:
        ids: list[str] = []
        for i, ref in enumerate(body.leases):
            try:
                ids.append(resolve(svc, ref, who))
            except (NotFound, Ambiguous) as exc:
                exc.errors = [FieldError(f"/leases/{i}", exc.detail)]
                raise
        body = body.model_copy(update={"leases": ids})
    return svc.compaction.compact_many(body, project=scope(who))


# -- quotas (admin) ------------------------------------------------------------------------------------------

Project = Annotated[str, Path(pattern=PROJECT_PATH)]
ResourceClass = Annotated[str, Path(pattern=RC_PATH)]


@router.get("/v1/quotas/{project}", response_model=list[QuotaView], responses=responses(403), tags=["quotas"])
def list_quotas(project: Project, who: Admin, svc: Svc) -> list[QuotaView]:
    return svc.quotas.list(project)


@router.get(
    "/v1/quotas/{project}/{resource_class}",
    response_model=QuotaView,
    responses=responses(403, 404),
    tags=["quotas"],
)
def get_quota(project: Project, resource_class: ResourceClass, who: Admin, svc: Svc) -> QuotaView:
    return svc.quotas.get(project, resource_class)


@router.put(
    "/v1/quotas/{project}/{resource_class}",
    response_model=QuotaView,
    responses=responses(403),
    tags=["quotas"],
    summary="Set a project's quota on a class (applies to bookings from now on)",
)
def put_quota(
    project: Project, resource_class: ResourceClass, body: SetQuota, who: Admin, svc: Svc
) -> QuotaView:
    # a quota may precede the inventory it limits (a GPU model on order), but not name a non-class
    problem = naming_problem(resource_class)
    if problem is not None:
        raise ValidationFailed(problem, [FieldError("#/path/resource_class", problem)])
    return svc.quotas.put(project, resource_class, body)


@router.delete(
    "/v1/quotas/{project}/{resource_class}",
    status_code=204,
    responses=responses(403, 404),
    tags=["quotas"],
)
def delete_quota(project: Project, resource_class: ResourceClass, who: Admin, svc: Svc) -> Response:
    svc.quotas.delete(project, resource_class)
    return Response(status_code=204)
