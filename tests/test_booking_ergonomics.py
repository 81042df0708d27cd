"""Issue 14's booking ergonomics: a refused extension says how far the lease can go (``max_end``), and
cancelling a lease with unfinished jobs is refused naming them unless forced."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from planner_support import fast_settings
from slotbroker.api.app import create_app
from slotbroker.config import Settings
from slotbroker.services.planner import Planner
from slotbroker.services.planner.provisioners.simulated import SimulatedConfig, SimulatedProvisioner
from slotbroker.services.tokens import Role, TokenService
from slotbroker.store.db import Database

HOUR = 3600
DAY = 86400
TOPOLOGY = {
    "providers": [
        {
            "name": "S",
            "kind": "site",
            "children": [{"name": "h1", "kind": "host", "inventories": {"VCPU": 8, "MEMORY_MB": 4096}}],
        }
    ]
}


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def at(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


def book(client: TestClient, headers: dict[str, str], start: int, end: int, vcpu: int, **more: Any) -> Any:
    host = client.get("/v1/providers?name=h1", headers=headers).json()["items"][0]["uuid"]
    body = {
        "start": iso(start),
        "end": iso(end),
        "items": [{"provider_uuid": host, "resource_class": "VCPU", "amount": vcpu}],
        **more,
    }
    r = client.post("/v1/leases", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def test_a_refused_extension_says_how_far_the_lease_can_go(
    client: TestClient, admin: dict[str, str], user: dict[str, str]
) -> None:
    assert client.post("/v1/topology", json=TOPOLOGY, headers=admin).status_code == 200
    t0 = int(time.time()) // HOUR * HOUR + 2 * HOUR
    lease = book(client, user, t0, t0 + HOUR, 4)
    book(client, user, t0 + 3 * HOUR, t0 + 4 * HOUR, 6)  # leaves 2 VCPU from t0 + 3h
    book(client, user, t0 + HOUR, t0 + 2 * HOUR, 2)  # leaves 6: still room for the 4
    r = client.patch(
        f"/v1/leases/{lease['id']}", json={"generation": 0, "end": iso(t0 + 5 * HOUR)}, headers=user
    )
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "capacity_conflict"
    assert at(r.json()["max_end"]) == t0 + 3 * HOUR
    r = client.patch(
        f"/v1/leases/{lease['id']}", json={"generation": 0, "end": r.json()["max_end"]}, headers=user
    )
    assert r.status_code == 200, r.text
    assert r.json()["end_s"] == t0 + 3 * HOUR
    # past the longest booking the policy allows: max_end is that limit
    r = client.patch(
        f"/v1/leases/{lease['id']}", json={"generation": 1, "end": iso(t0 + 40 * DAY)}, headers=user
    )
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "lease_too_long"
    assert at(r.json()["max_end"]) == t0 + 3 * HOUR  # the 6-VCPU lease right after still blocks it
    # before the extension window opens nothing can be added yet: max_end is the current end
    far = book(client, user, t0 + 5 * DAY, t0 + 5 * DAY + HOUR, 1)
    r = client.patch(
        f"/v1/leases/{far['id']}", json={"generation": 0, "end": iso(t0 + 6 * DAY)}, headers=user
    )
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "outside_extension_window"
    assert at(r.json()["max_end"]) == far["end_s"]


def test_cancelling_a_lease_with_unfinished_jobs_needs_force(db: Database) -> None:
    sim = SimulatedProvisioner(SimulatedConfig())
    planner = Planner(db, settings=fast_settings(workers=0), provisioners={"simulated": sim})
    settings = Settings(
        database_url=db.url,
        migrate_on_start=False,
        rate_per_s=10_000,
        rate_burst=10_000,
        event_loop_interval_s=0,
        planner_workers=0,
    )
    app = create_app(settings, db=db, planner=planner)
    tokens = TokenService(db)
    admin = {"Authorization": f"Bearer {tokens.create(project='ops', role=Role.ADMIN)}"}
    user = {"Authorization": f"Bearer {tokens.create(project='sci', role=Role.USER)}"}
    with TestClient(app) as client:
        assert client.post("/v1/topology", json=TOPOLOGY, headers=admin).status_code == 200
        t0 = int(time.time()) // HOUR * HOUR + 2 * HOUR
        lease = book(client, user, t0, t0 + HOUR, 1, name="with-jobs")
        job = {
            "id": "job-keep-1",
            "lease_id": lease["id"],
            "provisioner": "simulated",
            "workload": {"command": ["true"]},
        }
        assert client.post("/v1/jobs", json=job, headers=user).status_code == 201
        for method, url in (("POST", "/v1/leases/with-jobs/cancel"), ("DELETE", "/v1/leases/with-jobs")):
            r = client.request(method, url, headers=user)
            assert r.status_code == 409, r.text
            assert r.json()["code"] == "jobs_running"
            assert r.json()["running_jobs"] == ["job-keep-1"]
            assert "job-keep-1" in r.json()["detail"]
        assert client.get("/v1/leases/with-jobs", headers=user).json()["status"] == "PENDING"
        r = client.post("/v1/leases/with-jobs/cancel?force=true", headers=user)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "CANCELLED"
        assert client.post("/v1/leases/with-jobs/cancel", headers=user).status_code == 200  # idempotent
        # a lease without jobs cancels without force
        plain = book(client, user, t0, t0 + HOUR, 1)
        assert client.delete(f"/v1/leases/{plain['id']}", headers=user).status_code == 204
