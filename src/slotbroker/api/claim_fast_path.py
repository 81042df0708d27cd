"""``POST /v1/claims`` without the framework's per-request work, for the requests that need none of it.

Why: a claim is the API's hottest write, and measured per claim FastAPI's machinery (route matching,
exception and exit-stack middlewares, dependency solving, the request object) cost about as much CPU as
the claim's own Python. This ASGI middleware answers a claim that is well-formed and authenticated by a
cached token directly: JSON body -> ``ClaimIn`` -> ``claim_response_async`` (the route's own
``claim_response``, with an explicit claim run on the event loop by ``ClaimService.claim_async``) -> the
route's response. Everything else is handed to FastAPI unchanged, with
the body replayed: a missing or uncached token, a body that does not validate, another media type. So
the route stays the one definition of the endpoint (OpenAPI, validation and auth problems), and the
fast path can only ever answer what the route would have answered (tests/api/test_claim_fast_path.py
checks both against each other on generated bodies).

It sits inside the content, limits and metrics middlewares (body limits, YAML both ways, in-flight and
rate limits, request metrics all still apply) and maps domain errors and lost connections with the
same functions as the exception handlers (``api/problems.py``); anything unexpected propagates to the
server's error middleware, exactly as from the route. ``SLOTBROKER_CLAIM_FAST_PATH=0`` turns it off.
"""

from __future__ import annotations

import json
from typing import Generic, TypeVar

from fastapi.security.utils import get_authorization_scheme_param
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from starlette.responses import Response

from slotbroker.api.content import ASGIApp, Receive, Scope, Send, media_type, replayed
from slotbroker.api.problems import database_problem, domain_problem
from slotbroker.api.routers import claims
from slotbroker.bootstrap import Services
from slotbroker.domain.errors import SlotbrokerError
from slotbroker.services.access.tokens import Principal

T = TypeVar("T")
PATH = claims.CLAIMS_PATH
# What metrics label the request with (``scope["route"].path``), as if the router had matched it.
ROUTE = next(
    r
    for r in claims.router.routes
    if getattr(r, "path", None) == PATH and "POST" in getattr(r, "methods", ())
)


def bearer_token(scope: Scope) -> str | None:
    """The credentials of the first Authorization header when its scheme is Bearer, as FastAPI reads it."""
    for key, value in scope["headers"]:
        if key.lower() == b"authorization":
            scheme, credentials = get_authorization_scheme_param(value.decode("latin-1"))
            return credentials if scheme.lower() == "bearer" and credentials else None
    return None


def header(scope: Scope, name: bytes) -> str | None:
    """The first ``name`` header (lower-case bytes), as Starlette's ``Request.headers.get`` reads it."""
    for key, value in scope["headers"]:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def content_type(scope: Scope) -> str:
    return media_type(header(scope, b"content-type"))


async def read_body(receive: Receive) -> bytearray | None:
    """The whole request body, or None when the client went away before sending it."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body


def fast_path_applies(scope: Scope, path: str) -> bool:
    """A JSON ``POST path`` without query parameters (the router refuses those: api/query_check.py)."""
    return (
        scope["type"] == "http"
        and scope["path"] == path
        and scope["method"] == "POST"
        and content_type(scope) == "application/json"
        and not scope.get("query_string")
    )


class BodyFastPath(Generic[T]):
    """What both fast paths do around their own answer: a JSON ``POST`` to ``path`` with a cached token
    and a body ``parse`` accepts is answered by ``answer``; anything else goes to the route, with the
    body replayed; domain errors and lost connections become the exception handlers' problems."""

    path: str
    route: object  # what metrics label the request with, as if the router had matched it

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def parse(self, body: bytes) -> T | None:
        """The request this path answers, or None to hand the body to the route (its own problem)."""
        raise NotImplementedError

    async def answer(self, request: T, who: Principal, services: Services, scope: Scope) -> Response:
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not fast_path_applies(scope, self.path):
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope)
        services = scope["app"].state.services
        who = services.tokens.cached(token) if token else None
        if who is None:  # no token, or not verified yet: the route authenticates (and fills the cache)
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:
            return
        request = self.parse(bytes(body))
        if request is None:
            await self.app(scope, replayed(bytes(body), receive), send)
            return
        scope["route"] = self.route
        response: Response
        try:
            response = await self.answer(request, who, services, scope)
        except SlotbrokerError as exc:
            response = domain_problem(exc, self.path)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise  # a bug: the server's error middleware answers (and logs) it, as for the route
            response = database_problem(exc, "POST", self.path)
        await response(scope, receive, send)


class ClaimFastPath(BodyFastPath[claims.ClaimIn]):
    path = PATH
    route = ROUTE

    def parse(self, body: bytes) -> claims.ClaimIn | None:
        try:
            return claims.ClaimIn.model_validate(json.loads(body))
        # the route answers with its own problem (RecursionError: JSON nested past the parser's depth)
        except (ValueError, ValidationError, RecursionError):
            return None

    async def answer(
        self, request: claims.ClaimIn, who: Principal, services: Services, scope: Scope
    ) -> Response:
        return await claims.claim_response_async(request, who, services)


__all__ = ["BodyFastPath", "ClaimFastPath", "bearer_token", "fast_path_applies", "header", "read_body"]
