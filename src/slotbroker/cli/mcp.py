"""``slotbroker mcp``: the MCP server on stdio, for agent hosts that start their tools as processes.

It talks to a running server over HTTP with a token, like any client (``SLOTBROKER_URL``,
``SLOTBROKER_TOKEN``): it never opens the database, so it holds no more rights than the token.
Standard output carries the protocol only.
"""

from __future__ import annotations

from typing import Annotated

import anyio
import typer

Url = Annotated[
    str, typer.Option(envvar="SLOTBROKER_URL", help="The slotbroker server, e.g. http://localhost:8000.")
]
Token = Annotated[
    str | None,
    typer.Option(
        envvar="SLOTBROKER_TOKEN", help="The API token every tool call is made with.", show_default=False
    ),
]


def mcp(url: Url = "http://127.0.0.1:8000", token: Token = None) -> None:
    """Serve the MCP tools on stdio, calling the server at --url with --token."""
    anyio.run(serve_stdio, url, token)


async def serve_stdio(url: str, token: str | None) -> None:
    from mcp.server.stdio import stdio_server

    from slotbroker.mcp.connect import Remote
    from slotbroker.mcp.server import build_server

    async with Remote(url, token).open() as remote, stdio_server() as (read, write):
        server = build_server(remote)
        await server.run(read, write, server.create_initialization_options())
