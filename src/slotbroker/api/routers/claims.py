"""/v1/claims (claim an allocation request by id, or explicit items; release) and
/v1/allocation-candidates (Placement-style, time-bounded, each entry claimable by id)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Self

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, field_validator, model_validator

from slotbroker.api.auth import Reader
from slotbroker.api.problems import FieldProblem, problem_response, responses
from slotbroker.api.routers.deps import services
from slotbroker.bootstrap import Services
from slotbroker.domain.claims import MAX_ITEMS, ClaimItem, ClaimRequest, ConsumerKind
from slotbroker.domain.errors import FieldError, NotFound, SlotbrokerError
from slotbroker.domain.limits import check_instant
from slotbroker.domain.strict import Int
from slotbroker.domain.time import to_datetime
from slotbroker.services.access.tokens import Principal, Role
from slotbroker.services.booking.allocation_request_bodies import AllocationRequestError, ClaimOutcome
from slotbroker.services.booking.allocation_request_ids import MAX_ID_CHARS
from slotbroker.wire.claims import Candidates, ClaimedAllocation, ClaimView, HostSwap

router = APIRouter(prefix="/v1", tags=["claims"], responses=responses(400, 401, 413, 415, 422, 429, 503))
Svc = Annotated[Services, Depends(services)]


class ConsumerIn(BaseModel):
    kind: ConsumerKind = ConsumerKind.LEASE
    name: str = Field("", max_length=200)
    expires: AwareDatetime | None = Field(None, description="Holds only; default now + the offer TTL.")
    uuid: str | None = Field(
        None, max_length=36, description="Explicit-item claims only; an id claim's uuid derives from the id."
    )

    _expires_in_range = field_validator("expires")(check_instant)


class ItemIn(BaseModel):
    provider_uuid: str = Field(max_length=36)
    resource_class: str = Field(max_length=255)
    amount: Int = Field(ge=1, le=2**53)
    vlan_tag: Int | None = Field(None, ge=1, le=4094)


class ClaimIn(BaseModel):
    """Either ``allocation_request`` (an id from find-slot or allocation candidates), or ``items`` with
    ``start`` and ``end``."""

    allocation_request: str | None = Field(None, max_length=MAX_ID_CHARS)
    consumer: ConsumerIn = Field(default_factory=ConsumerIn)
    items: list[ItemIn] | None = Field(None, min_length=1, max_length=MAX_ITEMS)
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None

    _in_range = field_validator("start", "end")(check_instant)

    @model_validator(mode="after")
    def _one_way(self) -> Self:
        if (self.allocation_request is None) == (self.items is None):
            raise ValueError("give allocation_request or items, not both and not neither")
        if self.items is not None and (self.start is None or self.end is None):
            raise ValueError("explicit items need start and end")
        if self.allocation_request is not None and self.consumer.uuid is not None:
            raise ValueError("an allocation request's consumer uuid derives from its id; omit consumer.uuid")
        return self


def _view(o: ClaimOutcome) -> ClaimView:
    r = o.result
    return ClaimView(
        uuid=r.consumer_uuid,
        kind=r.kind,
        status=r.status,
        project=o.project,
        start=to_datetime(r.start_s),
        end=to_datetime(r.end_s),
        expires=None if r.expires_s is None else to_datetime(r.expires_s),
        allocation_request=o.allocation_request,
        allocations=[
            ClaimedAllocation(
                provider_uuid=it.provider_uuid,
                provider_name=it.provider_name or None,
                resource_class=it.resource_class,
                amount=it.amount,
                vlan_tag=it.vlan_tag,
            )
            for it in o.items
        ],
        swaps=[
            HostSwap(component=s.component, instance=s.instance, from_host=s.from_host, to_host=s.to_host)
            for s in o.swaps
        ],
        attempts=r.attempts,
    )


def _problem(exc: AllocationRequestError) -> JSONResponse:
    return problem_response(
        exc.status,
        exc.code,
        exc.detail,
        errors=[FieldProblem(pointer=f.pointer, detail=f.detail) for f in exc.errors],
        instance=CLAIMS_PATH,
    )


CLAIMS_PATH = "/v1/claims"


@router.post(
    "/claims",
    status_code=201,
    response_model=ClaimView,
    responses=responses(404, 409, 410),
    summary="Claim an allocation request by id (alternates on conflict) or explicit items",
)
def claim(body: ClaimIn, who: Reader, svc: Svc) -> Response:
    return claim_response(body, who, svc)


def claim_response(body: ClaimIn, who: Principal, svc: Services) -> Response:
    """The claim itself, shared by the route above and ``api/claim_fast_path.py`` (which answers the
    well-formed requests without the framework's per-request work): one definition of what a claim does."""
    try:
        return _claim_response(body, who, svc)
    except SlotbrokerError as exc:
        _readdress(exc, body)
        raise


def _claim_response(body: ClaimIn, who: Principal, svc: Services) -> Response:
    ars = svc.allocation_requests
    try:
        if body.allocation_request is not None:
            c = body.consumer
            outcome = ars.claim(
                body.allocation_request,
                project=who.project,
                kind=c.kind,
                name=c.name,
                expires_s=_expires(c),
                visible_to=None if who.role == Role.ADMIN else "",
            )
        else:
            request, now = _explicit(body, who, svc)
            outcome = ars.claim_items(request, now_s=now)
    except AllocationRequestError as exc:
        return _problem(exc)
    return _created(outcome)


async def claim_response_async(body: ClaimIn, who: Principal, svc: Services) -> Response:
    """``claim_response`` for the fast path: an explicit claim runs on the event loop
    (``ClaimService.claim_async``); a claim by allocation request id runs ``claim_response`` in a thread."""
    if body.allocation_request is not None:
        return await run_in_threadpool(claim_response, body, who, svc)
    request, now = _explicit(body, who, svc)
    try:
        outcome = await svc.allocation_requests.claim_items_async(request, now_s=now)
    except AllocationRequestError as exc:
        return _problem(exc)
    except SlotbrokerError as exc:
        _readdress(exc, body)
        raise
    return _created(outcome)


def _readdress(exc: SlotbrokerError, body: ClaimIn) -> None:
    """Turn the claim's pointers in ``exc`` (``/consumer/end_s``) into the body's fields (``/end``):
    the domain names the consumer it was given, the client should see what it sent."""
    if body.allocation_request is None:
        exc.errors = [FieldError(_EXPLICIT.get(e.pointer, e.pointer), e.detail) for e in exc.errors]
        return
    # an id claim's body has no items: what the id's items break (a quota) is the id's
    exc.errors = list(dict.fromkeys(FieldError(_by_id(e.pointer), e.detail) for e in exc.errors))


def _by_id(pointer: str) -> str:
    return "/allocation_request" if pointer.startswith("/items/") else _BY_ID.get(pointer, pointer)


_EXPLICIT = {
    "/consumer/start_s": "/start",
    "/consumer/end_s": "/end",
    "/consumer/expires_s": "/consumer/expires",
}
_BY_ID = {
    "/consumer/start_s": "/allocation_request",
    "/consumer/end_s": "/allocation_request",
    "/consumer/expires_s": "/consumer/expires",
}


def _expires(c: ConsumerIn) -> int | None:
    return int(c.expires.timestamp()) if c.expires is not None else None


def _explicit(body: ClaimIn, who: Principal, svc: Services) -> tuple[ClaimRequest, int]:
    ars = svc.allocation_requests
    assert body.items is not None
    assert body.start is not None
    assert body.end is not None
    now = int(ars.clock())
    c = body.consumer
    spec = ars.spec(
        kind=c.kind,
        project=who.project,
        start_s=int(body.start.timestamp()),
        end_s=int(body.end.timestamp()),
        now_s=now,
        name=c.name,
        expires_s=_expires(c),
        uuid=c.uuid,
    )
    items = tuple(ClaimItem(i.provider_uuid, i.resource_class, i.amount, i.vlan_tag) for i in body.items)
    return ClaimRequest(spec, items), now


def _created(outcome: ClaimOutcome) -> Response:
    uuid = outcome.result.consumer_uuid
    return Response(
        _view(outcome).model_dump_json(),
        status_code=201,
        media_type="application/json",
        headers={"Location": f"{CLAIMS_PATH}/{uuid}"},
    )


@router.delete(
    "/claims/{consumer_uuid}",
    status_code=204,
    responses=responses(404, 409),
    summary="Release a claim (idempotent)",
)
def release(consumer_uuid: Annotated[str, Path(max_length=36)], who: Reader, svc: Svc) -> Response:
    project = svc.allocation_requests.consumer_project(consumer_uuid)
    if project is None or (who.role != Role.ADMIN and project != who.project):
        raise NotFound(f"no claim {consumer_uuid}")
    svc.claims.release(consumer_uuid)
    return Response(status_code=204)


def _seconds(t: datetime | None) -> int | None:
    return None if t is None else int(t.timestamp())


@router.get(
    "/allocation-candidates",
    response_model=Candidates,
    tags=["allocation-candidates"],
    summary="Placement-style allocation candidates over [start, end), each claimable by id",
)
def allocation_candidates(
    who: Reader,
    svc: Svc,
    resources: Annotated[
        str | None, Query(max_length=4000, description="Placement syntax: VCPU:8,MEMORY_MB:32768")
    ] = None,
    required: Annotated[
        list[str] | None, Query(description="TRAIT,!FORBIDDEN or in:T1,T2; repeat for AND")
    ] = None,
    member_of: Annotated[
        list[str] | None, Query(description="in:agg1,agg2 (any), !in:agg3; repeat for AND")
    ] = None,
    limit: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    start: Annotated[
        AwareDatetime | None, Query(description="ISO 8601; default now"), AfterValidator(check_instant)
    ] = None,
    end: Annotated[
        AwareDatetime | None,
        Query(description="ISO 8601; default start + 1 h"),
        AfterValidator(check_instant),
    ] = None,
) -> Response:
    cands = svc.candidates
    q = cands.query(
        resources=resources,
        required=required,
        member_of=member_of,
        limit=limit,
        start_s=_seconds(start),
        end_s=_seconds(end),
    )
    body = cands.candidates(q, project=who.project)
    return Response(json.dumps(body), media_type="application/json")
