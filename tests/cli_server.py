"""A live slotbroker server with the demo data for the CLI tests (uvicorn in a thread, tests/live_server.py).

The demo database is loaded by the CLI itself (``slotbroker admin demo --load-only``); the CLI under test
then talks to the server only through ``--url``/``--token`` or the ``SLOTBROKER_*`` variables.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

import live_server
from slotbroker.cli.main import app
from slotbroker.services.access.tokens import Role


@dataclass(frozen=True)
class CliServer:
    url: str
    admin: str
    user: str  # project team-a
    other: str  # project team-b


@contextmanager
def demo_server(directory: Path, days: int = 2) -> Iterator[CliServer]:
    db = directory / "demo.db"
    loaded = CliRunner().invoke(
        app, ["admin", "demo", "--load-only", "--days", str(days), "--database-url", f"sqlite:///{db}"]
    )
    assert loaded.exit_code == 0, loaded.output
    api = live_server.make_app(db)
    with live_server.serve(api) as url:
        yield CliServer(
            url,
            live_server.token(api, Role.ADMIN, "ops"),
            live_server.token(api, Role.USER, "team-a"),
            live_server.token(api, Role.USER, "team-b"),
        )
