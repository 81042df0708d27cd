"""/ivoa: IVOA ExecutionBroker (Calycopis v1.0) endpoints over offers and leases.

``POST /ivoa/requests`` (and ``/ivoa/offersets``, the older path the worked examples use) answers an
``OfferSetResponse``; ``GET /ivoa/offersets/{uuid}``, ``GET /ivoa/sessions/{uuid}`` read;
``POST /ivoa/sessions/{uuid}`` with ``{kind: uri:enum-value-update, path: phase, value: ACCEPTED |
REJECTED | CANCELLED}`` accepts, rejects or cancels. Answers, problems included, are YAML unless
``Accept`` ranks JSON higher (``api/content.py: yaml_first``; 406 when it names neither). Errors
are RFC 9457 problems; a refused update (an expired or rejected offer) is 409 with ``result: NO``,
``messages`` and the ``session`` as it now is. See docs/ivoa.md.
"""

from __future__ import annotations

import copy
import json
import uuid as uuidlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from slotbroker.api.auth import Reader
from slotbroker.api.content import JSON_TYPES, media_type, parse_yaml
from slotbroker.api.problems import PROBLEM_JSON, TITLES, TOO_DEEP, FieldProblem, Problem, responses
from slotbroker.api.routers.deps import Lane, services
from slotbroker.bootstrap import Services
from slotbroker.domain.errors import FieldError, NotFound
from slotbroker.services.access.tokens import Principal, Role
from slotbroker.services.protocols.ivoa import IvoaInvalid, IvoaRefused, message
from slotbroker.services.protocols.ivoa.phases import PHASES

PREFIX = "/ivoa"
PROBLEM_YAML = "application/problem+yaml"


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses`` with the YAML form too: /ivoa problems follow the negotiated format."""
    out = responses(*statuses)
    for entry in out.values():
        entry["content"][PROBLEM_YAML] = entry["content"][PROBLEM_JSON]
    return out


router = APIRouter(
    prefix=PREFIX, tags=["ivoa"], responses=problems(400, 401, 404, 406, 413, 415, 422, 429, 503)
)
Svc = Annotated[Services, Depends(services)]

_PHASES = list(PHASES)
_META = {
    "type": "object",
    "properties": {
        "uuid": {"type": "string"},
        "name": {"type": "string"},
        "url": {"type": "string"},
        "created": {"type": "string"},
        "messages": {"type": "array", "items": {"type": "object"}},
        "options": {"type": "array", "items": {"type": "object"}},
    },
}
SESSION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "IvoaExecutionSession",
    "description": "A Calycopis v1.0 ScheduledExecutionSession (one offer).",
    "required": ["kind", "meta", "compute", "phase", "expires", "schedule"],
    "properties": {
        "kind": {"type": "string"},
        "meta": _META,
        "executable": {"type": "object"},
        "compute": {"type": "object"},
        "storage": {"type": "array", "items": {"type": "object"}},
        "data": {"type": "array", "items": {"type": "object"}},
        "phase": {"type": "string", "enum": _PHASES},
        "expires": {"type": "string"},
        "schedule": {"type": "object"},
    },
}
OFFERSET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "IvoaOfferSet",
    "description": "A Calycopis v1.0 OfferSetResponse.",
    "required": ["kind", "meta", "result", "offers"],
    "properties": {
        "kind": {"type": "string"},
        "meta": _META,
        "result": {"type": "string", "enum": ["YES", "NO"]},
        "messages": {"type": "array", "items": {"type": "object"}},
        "offers": {"type": "array", "items": SESSION_SCHEMA},
    },
}
_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "description": "A Calycopis v1.0 ExecutionRequest (executable, compute, storage, data, schedule).",
        "content": {
            ctype: {"schema": {"type": "object", "title": "IvoaExecutionRequest"}}
            for ctype in ("application/yaml", "application/json")
        },
    }
}
_UPDATE_BODY = {
    "requestBody": {
        "required": True,
        "description": "An update of the session's phase: {kind: uri:enum-value-update, path: phase, "
        "value: ACCEPTED | REJECTED | CANCELLED}.",
        "content": {
            ctype: {
                "schema": {
                    "type": "object",
                    "title": "IvoaUpdate",
                    "required": ["kind", "path", "value"],
                    "properties": {
                        "kind": {"type": "string", "enum": ["uri:enum-value-update"]},
                        "path": {"type": "string", "enum": ["phase", "/phase"]},
                        "value": {"type": "string", "enum": ["ACCEPTED", "REJECTED", "CANCELLED"]},
                    },
                }
            }
            for ctype in ("application/yaml", "application/json")
        },
    }
}


def _ok(schema: dict[str, Any], description: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": description,
            "content": {ctype: {"schema": schema} for ctype in ("application/yaml", "application/json")},
        }
    }


def _project(who: Principal) -> str | None:
    """Whose offer sets the caller sees: admins every project's (None), everyone else their own."""
    return None if who.role == Role.ADMIN else who.project


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + PREFIX


def render(request: Request, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """JSON; the content middleware turns it into YAML unless the client prefers JSON (``yaml_first``)."""
    del request
    return JSONResponse(data, status_code=status, headers=headers)


async def _body(request: Request) -> Any:
    """The body as a document: JSON, or YAML (the content middleware has already turned a declared YAML
    body into JSON; an undeclared one is tried as JSON, then as YAML)."""
    raw = await request.body()
    if not raw.strip():
        raise IvoaInvalid("the request body is empty", [FieldError("", "body: required")])
    declared = media_type(request.headers.get("content-type"))
    try:
        return json.loads(raw)
    except RecursionError:
        raise IvoaInvalid(TOO_DEEP, [FieldError("", "body: nested too deeply")], "malformed_body") from None
    except ValueError:
        if declared in JSON_TYPES or declared.endswith("+json"):
            raise IvoaInvalid(
                "the request body is not valid JSON",
                [FieldError("", "body: not valid JSON")],
                "malformed_body",
            ) from None
    try:
        return parse_yaml(raw)
    except Exception:  # any YAML error, or bytes that are not text
        raise IvoaInvalid(
            "the request body is neither JSON nor YAML",
            [FieldError("", "body: neither JSON nor YAML")],
            "malformed_body",
        ) from None


def _check_uuid(value: str, what: str) -> None:
    try:
        uuidlib.UUID(value)
    except ValueError:
        raise NotFound(f"no {what} {value[:64]!r}: not a UUID") from None


def _refused(request: Request, exc: IvoaRefused) -> JSONResponse:
    """409 problem with the IVOA answer as extension members: result NO, messages, the session."""
    problem = Problem(
        title=TITLES[409],
        status=409,
        detail=exc.detail,
        code=exc.code,
        instance=request.url.path,
        errors=[FieldProblem(pointer=f.pointer, detail=f.detail) for f in exc.errors],
    ).model_dump(exclude_none=True)
    now = request.app.state.services.offers.clock()
    problem["result"] = "NO"
    problem["messages"] = [message("ERROR", exc.detail, now)]
    problem["session"] = exc.session
    problem["phase"] = exc.session.get("phase")
    options = exc.session.get("meta", {}).get("options", [])
    problem["allowed"] = [v for o in options if o.get("path") == "phase" for v in o.get("values", [])]
    return JSONResponse(problem, status_code=409, media_type=PROBLEM_JSON)


async def _create(request: Request, who: Principal, svc: Services, lane: Lane) -> Response:
    """The search and the offers it makes, in the find-slot lane (``api/find_slot_lane.py``)."""
    doc = await _body(request)
    ivoa = svc.ivoa
    out = await lane.run(lambda: ivoa.request(doc, project=who.project, base_url=_base(request)))
    headers = {"Location": out["meta"]["url"]} if "url" in out["meta"] else None
    return render(request, out, headers=headers)


@router.post(
    "/requests",
    response_class=Response,
    responses=_ok(OFFERSET_SCHEMA, "The offer set: result YES with offers, or NO with messages."),
    openapi_extra=_REQUEST_BODY,
    summary="Ask for execution offers (IVOA ExecutionRequest -> OfferSetResponse)",
)
async def post_request(request: Request, who: Reader, svc: Svc, lane: Lane) -> Response:
    return await _create(request, who, svc, lane)


@router.post(
    "/offersets",
    response_class=Response,
    responses=_ok(OFFERSET_SCHEMA, "The offer set: result YES with offers, or NO with messages."),
    openapi_extra=_REQUEST_BODY,
    summary="Ask for execution offers (the older path of POST /ivoa/requests)",
)
async def post_offerset(request: Request, who: Reader, svc: Svc, lane: Lane) -> Response:
    return await _create(request, who, svc, lane)


def _failed_or_problem() -> dict[str, Any]:
    """/direct's 400: a FAILED session when nothing could be booked, a problem when the request itself
    is unreadable (as for every /ivoa operation)."""
    entry = problems(400)[400]
    entry.pop("model", None)  # FastAPI would merge the model's schema into ours
    # one schema for every media type (clients, schemathesis among them, may match YAML types loosely);
    # a copy each, as FastAPI edits them in place
    either = {"anyOf": [FAILED_SESSION_SCHEMA, entry["content"][PROBLEM_JSON]["schema"]]}
    media = (PROBLEM_JSON, PROBLEM_YAML, "application/json", "application/yaml")
    entry["content"] = {m: {"schema": copy.deepcopy(either)} for m in media}
    entry["description"] = "Nothing could be booked (a FAILED session saying why), or a bad request."
    return dict(entry)


# The spec's FailedExecutionResponse is an AbstractExecutionSession (only ``kind`` required): a session
# that never ran has no schedule, expiry or granted compute.
FAILED_SESSION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["kind", "meta", "phase"],
    "properties": {
        "kind": {"type": "string"},
        "meta": {"type": "object"},
        "phase": {"type": "string", "enum": ["FAILED"]},
    },
}


@router.post(
    "/direct",
    response_class=Response,
    responses={
        **_ok(SESSION_SCHEMA, "Booked without the offer round: the ACCEPTED session."),
        400: _failed_or_problem(),
    },
    openapi_extra=_REQUEST_BODY,
    summary="Book an execution directly: the first offer that holds, accepted (IVOA DirectExecution)",
)
async def post_direct(request: Request, who: Reader, svc: Svc, lane: Lane) -> Response:
    doc = await _body(request)
    ivoa = svc.ivoa
    # its search and the booking that follows, in the find-slot lane (api/find_slot_lane.py)
    ok, out = await lane.run(lambda: ivoa.direct(doc, project=who.project, base_url=_base(request)))
    if not ok:
        return render(request, out, status=400)
    return render(request, out, headers={"Location": out["meta"]["url"]})


@router.get(
    "/offersets/{uuid}",
    response_class=Response,
    responses=_ok(OFFERSET_SCHEMA, "The offer set, phases as they are now."),
    summary="Read an offer set",
)
async def get_offerset(uuid: str, request: Request, who: Reader, svc: Svc) -> Response:
    _check_uuid(uuid, "offer set")
    ivoa = svc.ivoa
    out = await run_in_threadpool(
        lambda: ivoa.offer_set(uuid, project=_project(who), base_url=_base(request))
    )
    return render(request, out)


@router.get(
    "/sessions/{uuid}",
    response_class=Response,
    responses=_ok(SESSION_SCHEMA, "The session (offer), its phase as it is now."),
    summary="Read a session",
)
async def get_session(uuid: str, request: Request, who: Reader, svc: Svc) -> Response:
    _check_uuid(uuid, "session")
    ivoa = svc.ivoa
    out = await run_in_threadpool(lambda: ivoa.session(uuid, project=_project(who), base_url=_base(request)))
    return render(request, out)


@router.post(
    "/sessions/{uuid}",
    response_class=Response,
    responses={
        **_ok(SESSION_SCHEMA, "The session after the update."),
        **problems(409),
    },
    openapi_extra=_UPDATE_BODY,
    summary="Accept, reject or cancel a session (an update of its phase)",
)
async def post_session(uuid: str, request: Request, who: Reader, svc: Svc) -> Response:
    _check_uuid(uuid, "session")
    doc = await _body(request)
    ivoa = svc.ivoa
    try:
        out = await run_in_threadpool(
            lambda: ivoa.update(uuid, doc, project=_project(who), base_url=_base(request))
        )
    except IvoaRefused as exc:
        return _refused(request, exc)
    return render(request, out)
