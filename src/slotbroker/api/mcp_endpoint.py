"""``/mcp``: the MCP server over streamable HTTP, inside the API app.

The endpoint checks the Bearer token exactly as ``/v1`` does (``auth.authenticate``; a 401 problem
otherwise), then hands the request to the SDK's session manager. The manager is **stateless** with JSON
answers: each POST carries its own token and is served on its own, so any replica can answer it and
nothing is kept between requests (the tools need no server-to-client requests). Its task group runs in
the app's lifespan, started by the first ``/mcp`` request (the SDK is imported then, not at app start);
a new manager per lifespan, as the SDK allows each one to run once.

Tools call the API through the same app in-process (``connect.InProcess``), so every call passes the
same middleware (limits, body checks, metrics) and routes as a request from outside.

The per-token rate limit is not charged for the ``/mcp`` request itself (``limits.RATE_FREE``): the API
calls a tool makes are charged to the same token instead, so an agent has the same budget as any client
and a refusal reaches it as a tool error with the ``Retry-After`` figure, not as a transport failure.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
from fastapi import FastAPI
from starlette.routing import Route

from slotbroker.api.auth import authenticate
from slotbroker.api.content import Receive, Scope, Send
from slotbroker.api.problems import domain_problem, problem_response
from slotbroker.domain.errors import SlotbrokerError, Unauthorized
from slotbroker.mcp.connect import bearer_token

if TYPE_CHECKING:
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

PATH = "/mcp"
log = logging.getLogger(__name__)


def _manager(app: FastAPI) -> tuple[StreamableHTTPSessionManager, Any]:
    """The SDK's session manager over the tools, and the in-process connector it calls the API through.
    The SDK and the tools are imported here, on first use: most processes never serve ``/mcp``, and
    importing them costs every app start about half a second (docs/mcp.md)."""
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

    from slotbroker.mcp.connect import InProcess
    from slotbroker.mcp.server import build_server

    connector = InProcess(app)
    manager = StreamableHTTPSessionManager(build_server(connector), stateless=True, json_response=True)
    return manager, connector


class McpEndpoint:
    """The ASGI app behind ``/mcp``. Its session manager starts on the first authenticated request, in a
    task the app's lifespan owns (the SDK's task group must be entered and left by one task), and stops
    with the lifespan."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.manager: StreamableHTTPSessionManager | None = None
        self._wanted: anyio.Event | None = None  # set by the first request; None outside the lifespan
        self._settled = anyio.Event()  # the manager runs, or could not start
        self._stop = anyio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            token = bearer_token(
                {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            )
            if token is None:
                raise Unauthorized("missing bearer token (Authorization: Bearer <token>)")
            await authenticate(self.app.state.services.tokens, token)
        except SlotbrokerError as exc:
            await domain_problem(exc, PATH)(scope, receive, send)
            return
        if self._wanted is not None:
            self._wanted.set()
            await self._settled.wait()
        if self.manager is None:
            response = problem_response(503, "not_ready", "the MCP endpoint is not running", instance=PATH)
            await response(scope, receive, send)
            return
        await self.manager.handle_request(scope, receive, send)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The lifespan's part: a task that starts the manager when ``/mcp`` is first asked for."""
        self._wanted, self._settled, self._stop = anyio.Event(), anyio.Event(), anyio.Event()
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._serve, self._wanted, self._settled, self._stop)
                try:
                    yield
                finally:
                    self._stop.set()
                    self._wanted.set()  # wake the task if /mcp was never asked for
        finally:
            self._wanted = None

    async def _serve(self, wanted: anyio.Event, settled: anyio.Event, stop: anyio.Event) -> None:
        await wanted.wait()
        if stop.is_set():
            settled.set()
            return
        try:
            manager, connector = await anyio.to_thread.run_sync(_manager, self.app)  # imports off the loop
        except Exception:
            log.exception("the MCP endpoint could not start")
            settled.set()  # requests answer 503 rather than wait
            return
        try:
            async with manager.run():
                self.manager = manager
                settled.set()
                await stop.wait()
        finally:
            self.manager = None
            settled.set()
            await connector.aclose()


def mount(app: FastAPI) -> McpEndpoint:
    """Serve ``/mcp`` from ``app``; the endpoint's session manager runs within the app's lifespan, from
    the first ``/mcp`` request on."""
    endpoint = McpEndpoint(app)
    app.router.routes.append(Route(PATH, endpoint=endpoint, methods=["GET", "POST", "DELETE"]))
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(asgi: Any) -> AsyncIterator[Any]:
        async with endpoint.running(), inner(asgi) as state:
            yield state

    app.router.lifespan_context = lifespan
    app.state.mcp = endpoint
    return endpoint
