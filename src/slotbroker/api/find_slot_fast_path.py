"""``POST /v1/find-slot`` without the framework's per-request work, for the requests that need none of it.

Why: measured in the server under load (issue 18, docs/performance.md), FastAPI's machinery around the
find-slot route (route matching over every route, the exception and exit-stack middlewares, solving
the auth, services and query-check dependencies, the request object, reading the body as a field)
cost about a quarter of the server's CPU per answer, beside the search itself. This ASGI middleware
answers a JSON object body with a cached token directly: the body -> ``FindSlotService.answer`` in the
app's find-slot lane (``api/find_slot_lane.py``, as the route runs it) ->
``routers.find_slot.find_slot_response``, the route's own response. Everything else goes to the route
unchanged, with the body replayed: a missing or uncached token, a body that is not a JSON object,
another media type, query parameters. So the route stays the one definition of the endpoint (OpenAPI,
validation and auth problems), and the fast path can only answer what the route would have
(tests/api/test_find_slot_fast_path.py sends generated bodies to both).

It sits where the claim fast path does, inside the content, limits and metrics middlewares, and maps
domain and lost-connection errors with the exception handlers' own functions (``api/problems.py``);
anything unexpected propagates to the server's error middleware, as from the route.
``SLOTBROKER_FIND_SLOT_FAST_PATH=0`` turns it off.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from slotbroker.api.claim_fast_path import BodyFastPath, header
from slotbroker.api.content import Scope
from slotbroker.api.find_slot_lane import FindSlotLane
from slotbroker.api.routers import find_slot
from slotbroker.bootstrap import Services
from slotbroker.services.access.tokens import Principal

PATH = find_slot.FIND_SLOT_PATH
# What metrics label the request with (``scope["route"].path``), as if the router had matched it.
ROUTE = next(
    r
    for r in find_slot.router.routes
    if getattr(r, "path", None) == PATH and "POST" in getattr(r, "methods", ())
)


class FindSlotFastPath(BodyFastPath[dict[str, Any]]):
    path = PATH
    route = ROUTE

    def parse(self, body: bytes) -> dict[str, Any] | None:
        try:
            doc = json.loads(body)
        # the route answers with its own problem (RecursionError: JSON nested past the parser's depth)
        except (ValueError, RecursionError):
            return None
        return doc if isinstance(doc, dict) else None

    async def answer(
        self, request: dict[str, Any], who: Principal, services: Services, scope: Scope
    ) -> Response:
        job = find_slot.wants_job(header(scope, b"prefer"))
        lane: FindSlotLane = scope["app"].state.find_slot_lane
        answer = await lane.answer(services, request, project=who.project, job=job)
        return find_slot.find_slot_response(answer)


__all__ = ["FindSlotFastPath"]
