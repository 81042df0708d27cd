"""RFC 9457 problem details: every 4xx and 5xx has the same shape and a stable ``code``.

Clients branch on ``code`` (``validation_error``, ``concurrent_update`` ...), people read ``detail``,
forms highlight each ``errors[].pointer``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match, Route

from slotbroker.domain import errors as e
from slotbroker.domain.inventory import rule_field
from slotbroker.services.booking.offer_states import OfferConflict

PROBLEM_JSON = "application/problem+json"
# Compatibility endpoints whose originals answer 400 (not 422) to invalid input (FABRIC, IVOA Calycopis).
BAD_REQUEST_PREFIXES = ("/calendar", "/ivoa", "/resources")
# The answer to a body nested past what the parsers recurse into, JSON and YAML alike.
TOO_DEEP = "the request body is nested too deeply"
# A body of a million wrong items would otherwise cost a million entries (and seconds on the event loop).
MAX_ERRORS = 100
log = logging.getLogger("slotbroker.api")

STATUS: dict[type[e.SlotbrokerError], int] = {
    e.ValidationFailed: 422,
    e.NotFound: 404,
    e.AlreadyExists: 409,
    e.Ambiguous: 409,
    e.ConcurrentUpdate: 409,
    e.InUse: 409,
    e.CapacityConflict: 409,
    e.Forbidden: 403,
    e.Unauthorized: 401,
    OfferConflict: 409,
}
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class FieldProblem(BaseModel):
    pointer: str = Field(
        description="RFC 6901 JSON pointer to the offending field in the request body; "
        "query and path parameters are named '#/query/NAME' and '#/path/NAME'."
    )
    detail: str


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable snake_case error code to branch on.")
    instance: str | None = None
    errors: list[FieldProblem] = Field(default_factory=list)
    candidates: list[str] | None = Field(
        None, description="code ambiguous: the full ids an id prefix or a name matches."
    )
    max_end: str | None = Field(
        None,
        description="An extension refused: the furthest end (ISO 8601) the lease can be extended to "
        "now (its current end when it cannot be extended at all).",
    )
    max_expires: str | None = Field(
        None, description="An offer set that cannot be renewed further: the latest its offers can be held."
    )
    running_jobs: list[str] | None = Field(
        None, description="code jobs_running: the ids of the lease's jobs that are not finished."
    )


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    errors: list[FieldProblem] | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
) -> JSONResponse:
    body = Problem(
        title=TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        code=code,
        instance=instance,
        errors=errors or [],
        **(extensions or {}),
    )
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


def _pointer(loc: tuple[Any, ...]) -> str:
    if not loc:
        return ""
    where, *rest = loc
    if where == "body":
        return e.pointer(*(str(p) for p in rest))
    return f"#/{where}/" + "/".join(str(p) for p in rest)


def invalid_status(path: str) -> int:
    """The status of invalid input: 422, or 400 on the compatibility endpoints that answer so."""
    return 400 if path.startswith(BAD_REQUEST_PREFIXES) else 422


def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errs = []
    malformed = False
    found = exc.errors()
    for err in found[:MAX_ERRORS]:
        if err.get("type") in ("json_invalid", "value_error.jsondecode"):
            malformed = True
        msg = str(err.get("msg", "invalid"))
        loc = (*err.get("loc", ()), *rule_field(err))
        errs.append(FieldProblem(pointer=_pointer(loc), detail=msg))
    if malformed:
        return problem_response(
            400,
            "malformed_body",
            "the request body is not valid JSON",
            errors=errs,
            instance=request.url.path,
        )
    first = errs[0] if errs else None
    detail = f"{first.pointer or 'request'}: {first.detail}" if first else "invalid request"
    if len(found) > MAX_ERRORS:
        detail += f" ({len(found)} problems; the first {MAX_ERRORS} are listed)"
    status = invalid_status(request.url.path)
    return problem_response(status, "validation_error", detail, errors=errs, instance=request.url.path)


def domain_problem(exc: e.SlotbrokerError, path: str) -> JSONResponse:
    status = STATUS.get(type(exc), 400)
    if status == 422 and path.startswith(BAD_REQUEST_PREFIXES):
        status = 400
    errs = [FieldProblem(pointer=f.pointer, detail=f.detail) for f in exc.errors]
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return problem_response(
        status, exc.code, exc.detail, errors=errs, instance=path, headers=headers, extensions=exc.extensions
    )


def bug_problem(exc: Exception, method: str, path: str) -> JSONResponse:
    log.error("unhandled error on %s %s", method, path, exc_info=exc)
    return problem_response(500, "internal_error", "internal error; it has been logged", instance=path)


def database_problem(exc: DBAPIError, method: str, path: str) -> JSONResponse:
    if exc.connection_invalidated:  # the connection died (database restart, network): retryable
        log.warning("database connection lost on %s %s: %s", method, path, exc.orig)
        return problem_response(
            503,
            "database_unavailable",
            "the database connection was lost (a write in flight may or may not have committed); "
            "retry shortly",
            instance=path,
            headers={"Retry-After": "1"},
        )
    return bug_problem(exc, method, path)


def install(app: FastAPI) -> None:
    """The handlers FastAPI runs; ``api/claim_fast_path.py`` calls the same functions."""

    @app.exception_handler(e.SlotbrokerError)
    async def _domain(request: Request, exc: e.SlotbrokerError) -> JSONResponse:
        return domain_problem(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        path, headers = request.url.path, dict(exc.headers or {})
        if exc.status_code == 400 and isinstance(exc.__cause__, RecursionError):  # FastAPI's JSON parse
            return problem_response(400, "malformed_body", TOO_DEEP, instance=path)
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        code = CODES.get(exc.status_code, "error")
        return problem_response(exc.status_code, code, str(exc.detail), instance=path, headers=headers)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        return bug_problem(exc, request.method, request.url.path)

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        return database_problem(exc, request.method, request.url.path)


def flat_routes(routes: Iterable[BaseRoute]) -> Iterator[Route]:
    """The path routes of an app, with included routers (which FastAPI keeps whole) opened up."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from flat_routes(inner.routes)
        elif isinstance(route, Route):
            yield route


def allowed_methods(request: Request) -> list[str]:
    """Every method some route takes at this path: FastAPI registers one route per method, so the
    405 Starlette raises names only the first route's."""
    methods: set[str] = set()
    for route in flat_routes(request.app.router.routes):
        if route.methods and route.matches(request.scope)[0] != Match.NONE:
            methods |= route.methods
    return sorted(methods)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem responses a route can give."""
    return {
        s: {
            "model": Problem,
            "description": TITLES.get(s, "Error"),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for s in statuses
    }
