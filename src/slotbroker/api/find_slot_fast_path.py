"""``POST /v1/find-slot`` without the framework's per-request work, for the requests that need none of it.

Why: measured in the server under load (issue 18, docs/performance.md), FastAPI's machinery around the
find-slot route (route matching over every route, the exception and exit-stack middlewares, solving
the auth, services and query-check dependencies, the request object, reading the body as a field)
cost about a quarter of the server's CPU per answer, beside the search itself. This ASGI middleware
answers a JSON object body with a cached token directly: the body -> ``FindSlotService.answer`` on the
thread pool (as the route's ``def`` runs) -> ``routers.find_slot.find_slot_response``, the route's own
response. Everything else goes to the route unchanged, with the body replayed: a missing or uncached
token, a body that is not a JSON object, another media type, query parameters. So the route stays the
one definition of the endpoint (OpenAPI, validation and auth problems), and the fast path can only
answer what the route would have (tests/api/test_find_slot_fast_path.py sends generated bodies to both).

It sits where the claim fast path does, inside the content, limits and metrics middlewares, and maps
domain and lost-connection errors with the exception handlers' own functions (``api/problems.py``);
anything unexpected propagates to the server's error middleware, as from the route.
``SLOTBROKER_FIND_SLOT_FAST_PATH=0`` turns it off.
"""

from __future__ import annotations

import json

from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from slotbroker.api.claim_fast_path import bearer_token, fast_path_applies, header, read_body
from slotbroker.api.content import ASGIApp, Receive, Scope, Send, replayed
from slotbroker.api.problems import database_problem, domain_problem
from slotbroker.api.routers import find_slot
from slotbroker.domain.errors import SlotbrokerError

PATH = find_slot.FIND_SLOT_PATH
# What metrics label the request with (``scope["route"].path``), as if the router had matched it.
ROUTE = next(
    r
    for r in find_slot.router.routes
    if getattr(r, "path", None) == PATH and "POST" in getattr(r, "methods", ())
)


class FindSlotFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not fast_path_applies(scope, PATH):
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
        try:
            doc = json.loads(body)
        # the route answers with its own problem (RecursionError: JSON nested past the parser's depth)
        except (ValueError, RecursionError):
            doc = None
        if not isinstance(doc, dict):
            await self.app(scope, replayed(bytes(body), receive), send)
            return
        scope["route"] = ROUTE
        job = find_slot.wants_job(header(scope, b"prefer"))
        response: Response
        try:
            answer = await run_in_threadpool(services.find_slot.answer, doc, project=who.project, job=job)
            response = find_slot.find_slot_response(answer)
        except SlotbrokerError as exc:
            response = domain_problem(exc, PATH)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise  # a bug: the server's error middleware answers (and logs) it, as for the route
            response = database_problem(exc, "POST", PATH)
        await response(scope, receive, send)


__all__ = ["FindSlotFastPath"]
