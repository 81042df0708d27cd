"""The server's HTTP protocol sets TCP_NODELAY even where asyncio does not (api/server.py).

uvicorn's multi-worker mode binds ``socket(AF_INET, SOCK_STREAM)`` (protocol 0); asyncio sets TCP_NODELAY
only on accepted sockets whose protocol is IPPROTO_TCP, so every response met Nagle + delayed ACK
(~40 ms). These tests serve real connections from such a listening socket with uvicorn's stock protocol
and with ours, and read the option off the accepted sockets.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from slotbroker.api.server import H11, LOOP, PROTOCOL, HttpTools


async def _app(scope: object, receive: object, send: object) -> None:  # never called: no request is sent
    raise AssertionError("no request expected")


async def _accepted_nodelay(protocol_class: type[H11Protocol] | type[HttpToolsProtocol]) -> int:
    """Accept one TCP connection on a protocol-0 listening socket (as uvicorn's ``--workers`` binds it),
    served by ``protocol_class``; the TCP_NODELAY value of the accepted socket."""
    config = uvicorn.Config(_app, log_level="warning")
    config.load()
    state = ServerState()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # protocol 0, like uvicorn's bind_socket
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: protocol_class(config=config, server_state=state, app_state={}), sock=listener
    )
    try:
        _reader, writer = await asyncio.open_connection(*listener.getsockname())
        for _ in range(200):
            if state.connections:
                break
            await asyncio.sleep(0.01)
        (conn,) = state.connections
        sock = conn.transport.get_extra_info("socket")
        value = int(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()
        return value
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(("stock_class", "ours_class"), [(H11Protocol, H11), (HttpToolsProtocol, HttpTools)])
def test_slotbroker_protocol_sets_tcp_nodelay_where_the_stock_one_does_not(
    stock_class: type[H11Protocol] | type[HttpToolsProtocol], ours_class: type[H11] | type[HttpTools]
) -> None:
    stock = asyncio.run(_accepted_nodelay(stock_class))  # 0 with uvicorn 0.54 / CPython 3.11
    ours = asyncio.run(_accepted_nodelay(ours_class))
    assert ours != 0, f"TCP_NODELAY not set (uvicorn's own protocol: {stock})"


def test_serve_runs_the_c_parser_and_uvloop_here() -> None:
    """httptools and uvloop are dependencies, so ``slotbroker serve`` picks them on this platform."""
    module, _, name = PROTOCOL.partition(":")
    assert __import__(module, fromlist=[name]).__dict__[name] is HttpTools
    assert LOOP == "uvloop"
