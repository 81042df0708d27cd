"""A real slotbroker server for client tests: uvicorn on 127.0.0.1 in a background thread.

Shared by the client, CLI, API, MCP, portal and protocol tests (import it as ``live_server``).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import httpx
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from slotbroker.api.app import create_app
from slotbroker.config import Settings
from slotbroker.services.access.tokens import Role, TokenService


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serve(app: FastAPI, *, lifespan: Literal["on", "off"] = "off") -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 in a background thread until the block ends (``lifespan``
    "on" runs the app's background work: planner pool, lease events, the /mcp session manager)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan)
    )
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError("the test server did not come up")
        time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        assert not thread.is_alive(), "the test server did not shut down"


def make_app(db_path: Path, **limits: float) -> FastAPI:
    settings = Settings(
        database_url=f"sqlite:///{db_path}",
        rate_per_s=limits.get("rate_per_s", 10_000.0),
        rate_burst=int(limits.get("rate_burst", 10_000)),
        migrate_on_start=True,
    )
    return create_app(settings)


def token(app: FastAPI, role: Role, project: str = "p") -> str:
    return TokenService(app.state.services.db).create(project=project, role=role)


def poll_job(
    client: TestClient, location: str, headers: dict[str, str], timeout_s: float = 30
) -> dict[str, Any]:
    """A find-slot job (``GET location``) once it is done or failed, or as it is after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        r = client.get(location, headers=headers)
        assert r.status_code == 200, r.text
        job: dict[str, Any] = r.json()
        if job["status"] in ("done", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.02)
