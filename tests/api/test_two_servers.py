"""Two API server processes on one PostgreSQL database (PostgreSQL only).

Each server is a uvicorn subprocess with its own calendar cache, both on ``PG_URL`` (this test process's
schema). Threads race explicit-item claims for the last K units of a host through both servers
alternately: exactly K win, the rest get 409 ``capacity_conflict`` and the SQL audit shows no
overbooking. And a find-slot on server A right after a claim committed through server B never offers
what B just booked: A's cache notices the new calendar generation. Loopback only, bounded waits, both
servers stopped in a ``finally``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from conftest import PG_URL, require_postgres, reset_postgres
from live_server import free_port
from slotbroker.client import CapacityConflictError, Client, LeaseItemSpec, RetryPolicy
from slotbroker.services.access.tokens import Role, TokenService
from slotbroker.store import migrate
from slotbroker.store.db import Database
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire.find_slot import FindSlotResult

pytestmark = pytest.mark.postgres

HOUR = 3600
CAPACITY = 16
K = 3  # units left on the race host
N = 12  # racing claims
STARTUP_S = 30.0
TOPOLOGY: dict[str, Any] = {
    "providers": [
        {
            "name": "two-site",
            "kind": "site",
            "children": [
                {"name": "race-host", "kind": "host", "inventories": {"VCPU": CAPACITY}},
                {"name": "gpu-host", "kind": "host", "inventories": {"VCPU": 8, "GPU_A30": 1}},
            ],
        }
    ]
}


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Any  # the server's stderr (a temporary file: a pipe nobody reads could fill and block it)


def start_server() -> Server:
    port = free_port()
    env = {
        **os.environ,
        "SLOTBROKER_DATABASE_URL": PG_URL,
        "SLOTBROKER_MIGRATE_ON_START": "0",
        "SLOTBROKER_RATE_PER_S": "10000",
        "SLOTBROKER_RATE_BURST": "10000",
        "SLOTBROKER_EVENT_LOOP_INTERVAL_S": "0",
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "slotbroker.api.app:create_app",
        "--factory",
        "--http",
        "slotbroker.api.server:HttpTools",
        "--loop",
        "uvloop",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop_server
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
    return Server(f"http://127.0.0.1:{port}", process, log)


def wait_ready(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            server.log.seek(0)
            err = server.log.read().decode(errors="replace")
            raise RuntimeError(f"server exited with {server.process.returncode}: {err[-2000:]}")
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server {server.url} did not come up in {STARTUP_S} s")


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=5)
    server.log.close()


@dataclass
class Pair:
    a: str
    b: str
    admin: str
    db: Database
    hosts: dict[str, str]


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    require_postgres()
    reset_postgres(PG_URL)
    db = Database(PG_URL)
    migrate.upgrade(db.engine)
    admin = TokenService(db).create(project="ops", role=Role.ADMIN, name="two-servers")
    servers: list[Server] = []
    try:
        servers = [start_server(), start_server()]
        for s in servers:
            wait_ready(s)
        with Client(servers[0].url, admin) as api:
            api.import_topology(TOPOLOGY)
            hosts = {p.name: str(p.uuid) for p in api.iter_providers(kind=["host"])}
        yield Pair(servers[0].url, servers[1].url, admin, db, hosts)
    finally:
        for s in servers:
            stop_server(s)
        db.dispose()


def next_hour(hours: int) -> datetime:
    now = int(time.time())
    return datetime.fromtimestamp(now - now % HOUR + hours * HOUR, UTC)


def overbooked(db: Database) -> list[tuple[int, str, int, int]]:
    with UnitOfWork(db, readonly=True) as uow:
        return uow.allocations.overbooked()


def test_claims_race_through_both_servers(pair: Pair) -> None:
    start, end = next_hour(3), next_hour(7)
    host = pair.hosts["race-host"]
    with Client(pair.a, pair.admin) as api:
        api.claim(
            items=[LeaseItemSpec(provider_uuid=host, resource_class="VCPU", amount=CAPACITY - K)],
            start=start,
            end=end,
            name="filler",
        )
    barrier = threading.Barrier(N, timeout=30)
    no_retry = RetryPolicy.none()

    def race(i: int) -> str:
        url = pair.a if i % 2 == 0 else pair.b
        with Client(url, pair.admin, timeout=30, retry=no_retry) as api:
            barrier.wait()
            try:
                api.claim(
                    items=[{"provider_uuid": host, "resource_class": "VCPU", "amount": 1}],
                    start=start + timedelta(minutes=i),  # overlapping, not identical intervals
                    end=end,
                    name=f"racer-{i}",
                )
            except CapacityConflictError as exc:
                return exc.code
            return "won"

    with ThreadPoolExecutor(N) as pool:
        outcomes = Counter(pool.map(race, range(N), timeout=120))
    assert outcomes == Counter({"won": K, "capacity_conflict": N - K})
    assert overbooked(pair.db) == []


def test_find_slot_on_a_sees_a_claim_through_b(pair: Pair) -> None:
    start = next_hour(10)
    booked_end = start + timedelta(hours=4)
    request = {
        "components": [{"name": "gpu", "host": "gpu-host", "resources": {"GPU_A30": 1}}],
        "earliest_start": start.isoformat(),
        "latest_end": (start + timedelta(days=1)).isoformat(),
        "duration": "PT2H",
        "limit": 3,
    }
    with Client(pair.a, pair.admin, timeout=60) as a, Client(pair.b, pair.admin, timeout=60) as b:
        before = a.find_slot(request)  # warms A's cache on the calendar as it is now
        assert isinstance(before, FindSlotResult)
        assert before.windows[0].start == start
        b.find_slot(request)  # and B's
        b.claim(
            items=[{"provider_uuid": pair.hosts["gpu-host"], "resource_class": "GPU_A30", "amount": 1}],
            start=start,
            end=booked_end,
            name="last-gpu",
        )
        after = a.find_slot(request)
    assert isinstance(after, FindSlotResult)
    assert after.windows, "the GPU is free again after the booking"
    for w in after.windows:
        assert not (start <= w.start < booked_end), f"A offered {w.start}, inside the booking B just made"
        assert w.start >= booked_end  # one GPU: no window may overlap the booking at all
    assert overbooked(pair.db) == []
