"""How a tool reaches the public API on behalf of its caller.

Every tool is a call of :class:`slotbroker.client.AsyncClient` with the caller's own token, so an agent
gets the same authentication, roles, quotas, rate limits and problem answers as any client: the MCP
server holds no rule of its own. The two transports differ only in where that client points:

* ``/mcp`` (streamable HTTP, in the API app): the token is the one the MCP request carried, and the calls
  go to the same app in-process through ``httpx.ASGITransport`` (docs/decisions/0025-mcp-server.md).
* ``slotbroker mcp`` (stdio): one client for the server at ``SLOTBROKER_URL`` with ``SLOTBROKER_TOKEN``.

No retries: a 429 or 503 goes back to the agent at once as a tool error with the ``Retry-After`` figure,
and the agent decides whether to wait.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import httpx

from slotbroker.client import AsyncClient, RetryPolicy
from slotbroker.client.errors import AuthenticationError

TIMEOUT_S = 60.0


class Connector(Protocol):
    """The API client for the request being handled (``request`` is the HTTP request, None on stdio)."""

    def caller(self, request: Any) -> AsyncClient: ...


def bearer_token(headers: Any) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    value = headers.get("authorization") if headers is not None else None
    if not value:
        return None
    scheme, _, token = str(value).partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


class InProcess:
    """Calls the API app the MCP endpoint is mounted in, with the token of each MCP request."""

    def __init__(self, app: Any) -> None:
        self._http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), timeout=TIMEOUT_S)

    def caller(self, request: Any) -> AsyncClient:
        token = bearer_token(getattr(request, "headers", None))
        if token is None:  # the endpoint refuses such requests before the SDK sees them
            raise AuthenticationError(401, "unauthorized", "missing bearer token")
        return AsyncClient(
            "http://slotbroker.internal", token, retry=RetryPolicy.none(), http_client=self._http
        )

    async def aclose(self) -> None:
        await self._http.aclose()


class Remote:
    """Calls a slotbroker server over the network with one token (the stdio transport)."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url
        self._client = AsyncClient(url, token, retry=RetryPolicy.none(), timeout=TIMEOUT_S)

    def caller(self, request: Any) -> AsyncClient:
        return self._client

    @asynccontextmanager
    async def open(self) -> AsyncIterator[Remote]:
        try:
            yield self
        finally:
            await self._client.aclose()
