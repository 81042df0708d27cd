"""The benches' API server: ``slotbroker serve``'s uvicorn (httptools on uvloop, TCP_NODELAY) in a child
process, rate and in-flight limits lifted so that the bench measures the server and not its refusals.
One definition for bench/http_find_slot.py and bench/http_find_slot_load.py (and their callers)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def taskset(cpus: str | None) -> list[str]:
    """The prefix that pins a command to ``cpus`` (a taskset list such as "0" or "0-2"); none if unset."""
    return ["taskset", "-c", cpus] if cpus and shutil.which("taskset") else []


@contextmanager
def uvicorn_server(
    url: str,
    *,
    workers: int = 1,
    cpus: str | None = None,
    src: Path | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[tuple[str, int]]:
    """Serve the database at ``url`` with ``workers`` worker processes, pinned to ``cpus`` if given,
    importing slotbroker from ``src`` if given (another checkout's, for a before/after in one run);
    ``env`` adds settings. Yields (base URL, pid of the uvicorn process) once /healthz answers 200."""
    port = free_port()
    child_env = {
        **os.environ,
        **({"PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"} if src else {}),
        "SLOTBROKER_DATABASE_URL": url,
        "SLOTBROKER_RATE_PER_S": "1000000",
        "SLOTBROKER_RATE_BURST": "1000000",
        "SLOTBROKER_MAX_IN_FLIGHT": "1000",
        **(env or {}),
    }
    command = [*taskset(cpus), sys.executable, "-m", "uvicorn", "slotbroker.api.app:create_app", "--factory"]
    command += ["--http", "slotbroker.api.server:HttpTools", "--loop", "uvloop", "--no-access-log"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    command += ["--workers", str(workers)]
    proc = subprocess.Popen(command, env=child_env)
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=60) as http:
            for _ in range(600):
                try:
                    if http.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            else:
                raise RuntimeError(f"the server on {base} did not come up in 60 s")
        yield base, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)
