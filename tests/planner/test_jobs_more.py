"""More of /v1/jobs: "as soon as possible" (offer_set -> lease -> job), a lease's end expiring its jobs
through the lease event loop, and the AsyncClient's job methods (httpx.ASGITransport, same event loop)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from planner_support import NOW_S, fast_settings, make_lease
from slotbroker.api.app import create_app
from slotbroker.config import Settings
from slotbroker.services.access.tokens import Role, TokenService
from slotbroker.services.planner import Planner
from slotbroker.services.planner.provisioners.simulated import SimulatedConfig, SimulatedProvisioner
from slotbroker.services.planner.worker import WorkerPool
from slotbroker.store.db import Database
from slotbroker.store.models import ConsumerRow
from slotbroker.store.unit_of_work import UnitOfWork

TERMINAL = {"succeeded", "failed", "canceled", "expired"}
TOPOLOGY: dict[str, Any] = {
    "providers": [
        {
            "name": "S1",
            "kind": "site",
            "children": [
                {"name": "h1", "kind": "host", "inventories": {"VCPU": 8, "MEMORY_MB": 16384}},
                {"name": "h2", "kind": "host", "inventories": {"VCPU": 4, "MEMORY_MB": 8192}},
            ],
        }
    ]
}


@dataclass
class Env:
    app: FastAPI
    db: Database
    planner: Planner
    sim: SimulatedProvisioner
    slow: SimulatedProvisioner
    alpha_token: str
    admin_token: str

    @property
    def alpha(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.alpha_token}"}

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}


def build(db: Database) -> Env:
    sim = SimulatedProvisioner(SimulatedConfig(logs=("hello", "world")))
    slow = SimulatedProvisioner(SimulatedConfig(run_s=60.0), name="slow")
    planner = Planner(db, settings=fast_settings(workers=4), provisioners={"simulated": sim, "slow": slow})
    settings = Settings(
        database_url=db.url,
        migrate_on_start=False,
        rate_per_s=10_000,
        rate_burst=10_000,
        event_loop_interval_s=0,  # the test ticks the lease event loop itself
        planner_workers=4,
    )
    app = create_app(settings, db=db, planner=planner)
    tokens = TokenService(db)
    return Env(
        app,
        db,
        planner,
        sim,
        slow,
        tokens.create(project="alpha", role=Role.USER, name="alpha"),
        tokens.create(project="ops", role=Role.ADMIN, name="ops"),
    )


@pytest.fixture
def env(db: Database) -> Env:
    return build(db)


@pytest.fixture
def client(env: Env) -> Iterator[TestClient]:
    with TestClient(env.app) as c:  # the lifespan runs the embedded pool
        yield c


def wait_terminal(client: TestClient, env: Env, job_id: str, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        got = client.get(f"/v1/jobs/{job_id}", headers=env.alpha).json()
        if got["state"] in TERMINAL:
            return dict(got)
        assert time.monotonic() < deadline, got
        time.sleep(0.02)


def test_as_soon_as_possible_makes_a_lease_and_runs_the_job(env: Env, client: TestClient) -> None:
    r = client.post("/v1/topology", json=TOPOLOGY, headers=env.admin)  # a site, two empty hosts
    assert r.status_code == 200, r.text
    now = datetime.now(UTC)
    request = {
        "components": [{"name": "c", "resources": {"VCPU": 2}}],
        "earliest_start": now.isoformat(),
        "latest_end": (now + timedelta(hours=6)).isoformat(),
        "duration": "PT1H",
    }
    body = {
        "id": "asap-1",
        "provisioner": "simulated",
        "workload": {"command": ["true"]},
        "offer_set": {"request": request, "strategies": ["earliest"], "max_offers": 2},
    }
    created = client.post("/v1/jobs", json=body, headers=env.alpha)
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["project"] == "alpha"
    lease_id = job["lease_id"]
    lease = client.get(f"/v1/leases/{lease_id}", headers=env.alpha)
    assert lease.status_code == 200, lease.text
    status = lease.json()["status"]
    assert status in ("ACTIVE", "PENDING")  # the earliest offer starts now, or at the next boundary
    if status == "PENDING":  # its start event runs the job: fire it with a clock at the start
        start = int(datetime.fromisoformat(lease.json()["start"].replace("Z", "+00:00")).timestamp())
        state = client.get("/v1/jobs/asap-1", headers=env.alpha).json()["state"]
        # The job waits for its lease: still pending, unless the start has come meanwhile (slow machine).
        assert state == "pending" or time.time() >= start, state
        assert env.app.state.services.lease_events.tick(start) >= 1
    done = wait_terminal(client, env, "asap-1")
    assert done["state"] == "succeeded"
    assert done["lease_id"] == lease_id
    assert list(env.sim.releases.values()) == [1]
    # an idempotent replay makes no new offers (and no new lease)
    with UnitOfWork(env.db, readonly=True) as uow:
        before = uow.session.query(ConsumerRow).filter(ConsumerRow.kind == "lease").count()
    again = client.post("/v1/jobs", json=body, headers=env.alpha)
    assert again.status_code == 201
    assert again.json()["lease_id"] == lease_id
    with UnitOfWork(env.db, readonly=True) as uow:
        assert uow.session.query(ConsumerRow).filter(ConsumerRow.kind == "lease").count() == before


def test_lease_end_expires_its_jobs_through_the_event_loop(env: Env, client: TestClient) -> None:
    end = NOW_S + 1800
    lease = make_lease(env.db, project="alpha", end_s=end, events=[("end", end)])
    r = client.post(
        "/v1/jobs",
        json={"id": "long", "lease_id": lease, "provisioner": "slow", "workload": {"command": ["sleep"]}},
        headers=env.alpha,
    )
    assert r.status_code == 201, r.text
    deadline = time.monotonic() + 10
    while client.get("/v1/jobs/long", headers=env.alpha).json()["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    loop = env.app.state.services.lease_events
    assert loop.tick(end - 60) == 0  # not yet
    assert loop.tick(end + 1) >= 1  # the end event fires (a clock past the lease's end)
    done = wait_terminal(client, env, "long")
    assert done["state"] == "expired"
    assert [t["to_state"] for t in done["transitions"]][-1] == "expired"
    assert list(env.slow.releases.values()) == [1]  # released exactly once
    assert loop.tick(end + 2) == 0  # nothing fires twice
    assert client.get("/v1/jobs/long", headers=env.alpha).json()["state"] == "expired"
    assert list(env.slow.releases.values()) == [1]


@pytest.mark.anyio
async def test_async_client_job_methods(tmp_path: Any) -> None:
    from slotbroker.client import AsyncClient, NotFoundError
    from slotbroker.store import migrate

    db = Database(f"sqlite:///{tmp_path}/async.db")
    migrate.upgrade(db.engine)
    env = build(db)
    lease = make_lease(db, project="alpha")
    pool = WorkerPool(env.planner, workers=4)  # ASGITransport runs no lifespan: the pool runs in this loop
    pool.start()
    transport = httpx.ASGITransport(app=env.app)
    try:
        async with AsyncClient("http://testserver", env.alpha_token, transport=transport, timeout=30) as api:
            base = {"lease_id": lease, "provisioner": "simulated", "workload": {"command": ["true"]}}
            job = await api.create_job({**base, "id": "a-1"})
            assert job.id == "a-1"
            assert job.lease_id == lease
            events = [e async for e in api.job_events("a-1")]
            assert events[-1].event == "end"
            assert events[-1].data["state"] == "succeeded"
            states = [e.transition.to_state for e in events if e.transition is not None]
            assert states[0] == "pending"
            assert states[-1] == "succeeded"
            got = await api.get_job("a-1")
            assert got.state == "succeeded"
            await api.create_job({**base, "id": "a-2"})
            assert [j.id async for j in api.iter_jobs(lease=lease, page_size=1)] == ["a-2", "a-1"]
            page = await api.list_jobs(limit=1)
            assert [j.id for j in page.items] == ["a-2"]
            assert page.next_cursor is not None
            logs = await api.job_logs("a-1")
            assert [x.line for x in logs.items if x.stream == "run"] == ["hello", "world"]
            with pytest.raises(NotFoundError):
                await api.get_job("missing")
            with pytest.raises(NotFoundError):
                [e async for e in api.job_events("missing")]
            final = [e async for e in api.job_events("a-2")]
            assert final[-1].data["state"] == "succeeded"
    finally:
        await pool.stop()
        db.dispose()
    assert all(n == 1 for n in env.sim.releases.values())
