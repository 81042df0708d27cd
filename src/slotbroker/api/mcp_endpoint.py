"""``/mcp``: the MCP server over streamable HTTP, inside the API app.

The endpoint checks the Bearer token exactly as ``/v1`` does (``auth.authenticate``; a 401 problem
otherwise), then hands the request to the SDK's session manager. The manager is **stateless** with JSON
answers: each POST carries its own token and is served on its own, so any replica can answer it and
nothing is kept between requests (the tools need no server-to-client requests). Its task group runs in
the app's lifespan; a new manager per lifespan, as the SDK allows each one to run once.

Tools call the API through the same app in-process (``connect.InProcess``), so every call passes the
same middleware (limits, body checks, metrics) and routes as a request from outside.

The per-token rate limit is not charged for the ``/mcp`` request itself (``limits.RATE_FREE``): the API
calls a tool makes are charged to the same token instead, so an agent has the same budget as any client
and a refusal reaches it as a tool error with the ``Retry-After`` figure, not as a transport failure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.routing import Route

from slotbroker.api.auth import authenticate
from slotbroker.api.content import Receive, Scope, Send
from slotbroker.api.problems import domain_problem, problem_response
from slotbroker.domain.errors import SlotbrokerError, Unauthorized
from slotbroker.mcp.connect import InProcess, bearer_token
from slotbroker.mcp.server import build_server

PATH = "/mcp"


class McpEndpoint:
    """The ASGI app behind ``/mcp``."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.manager: StreamableHTTPSessionManager | None = None

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
        if self.manager is None:
            response = problem_response(503, "not_ready", "the MCP endpoint is not running", instance=PATH)
            await response(scope, receive, send)
            return
        await self.manager.handle_request(scope, receive, send)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        connector = InProcess(self.app)
        manager = StreamableHTTPSessionManager(build_server(connector), stateless=True, json_response=True)
        try:
            async with manager.run():
                self.manager = manager
                yield
        finally:
            self.manager = None
            await connector.aclose()


def mount(app: FastAPI) -> McpEndpoint:
    """Serve ``/mcp`` from ``app`` and run the endpoint's session manager within the app's lifespan."""
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
