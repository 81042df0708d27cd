"""How the API server is served: uvicorn, with TCP_NODELAY on every connection.

Why this module exists: with ``--workers N`` uvicorn binds the listening socket itself as
``socket(AF_INET, SOCK_STREAM)`` (protocol 0) and hands it to the worker processes; asyncio only sets
``TCP_NODELAY`` on accepted sockets whose protocol is ``IPPROTO_TCP``, so in multi-worker mode every
response (written as a header segment and a body segment) meets Nagle's algorithm and the client's
delayed ACK: ~40 ms per request instead of ~2 ms (measured: 46 ms vs 1.4 ms for ``/healthz``). The
protocol classes here set ``TCP_NODELAY`` themselves when a connection is made, whatever created the
socket. ``slotbroker serve`` uses them; with plain uvicorn pass ``--http slotbroker.api.server:HttpTools``
(``H11`` where httptools is not installed) and ``--loop uvloop``.

httptools (a C HTTP parser) and uvloop (a libuv event loop) are uvicorn's own "standard" extras: per
claim they took about a sixth off the server's CPU against h11 on asyncio (docs/decisions/0016).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):  # a socket that refuses the option keeps Nagle
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class H11(H11Protocol):
    """uvicorn's h11 protocol with TCP_NODELAY on the connection."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        set_nodelay(transport)
        super().connection_made(transport)


class HttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol (a C parser: less CPU per request than h11) with TCP_NODELAY."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        set_nodelay(transport)
        super().connection_made(transport)


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# What ``slotbroker serve`` runs: the C parser and libuv loop where installed (they are dependencies,
# but uvloop does not exist on Windows), else the pure-Python pair.
PROTOCOL = "slotbroker.api.server:HttpTools" if _has("httptools") else "slotbroker.api.server:H11"
LOOP = "uvloop" if _has("uvloop") else "asyncio"
