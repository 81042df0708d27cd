"""Hostile and careless requests on both backends: another project's ids read exactly like ids nobody
uses, unknown query parameters and resource classes are refused with a pointer and a hint, and booleans
are never taken for numbers.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner_support import fast_settings
from slotbroker.api.app import create_app
from slotbroker.config import Settings
from slotbroker.services.planner import Planner
from slotbroker.services.planner.provisioners.simulated import SimulatedConfig, SimulatedProvisioner
from slotbroker.services.tokens import Role, TokenService
from slotbroker.store.db import Database

HOUR = 3600
TOPOLOGY = {
    "providers": [
        {
            "name": "HQSITE",
            "kind": "site",
            "children": [
                {
                    "name": "hq-h1",
                    "kind": "host",
                    "inventories": {"VCPU": 32, "MEMORY_MB": 65536, "GPU_A30": 2},
                }
            ],
        }
    ]
}
IVOA_NOTEBOOK = "https://www.purl.org/ivoa.net/EB/schema/v1.0/types/executable/jupyter-notebook-1.0"
IVOA_COMPUTE = "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/compute/simple-compute-resource.yaml"


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class World:
    client: TestClient
    alpha: dict[str, str]  # project alpha: owns every id below
    beta: dict[str, str]  # project beta: must not learn they exist
    admin: dict[str, str]
    t0: int
    ids: dict[str, str] = field(default_factory=dict)

    def request(self, hours: int = 1) -> dict[str, Any]:
        return {
            "components": [{"name": "c", "resources": {"VCPU": 2, "MEMORY_MB": 1024}}],
            "earliest_start": iso(self.t0),
            "latest_end": iso(self.t0 + 24 * HOUR),
            "duration": f"PT{hours}H",
        }


@pytest.fixture
def world(db: Database) -> Iterator[World]:
    sim = SimulatedProvisioner(SimulatedConfig())
    planner = Planner(db, settings=fast_settings(workers=0), provisioners={"simulated": sim})
    settings_ = Settings(
        database_url=db.url,
        migrate_on_start=False,
        rate_per_s=10_000,
        rate_burst=10_000,
        event_loop_interval_s=0,
        planner_workers=0,
    )
    app: FastAPI = create_app(settings_, db=db, planner=planner)
    tokens = TokenService(db)

    def token(project: str, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens.create(project=project, role=role, name=f't-{project}')}"}

    with TestClient(app) as client:
        now = int(time.time())
        w = World(client, token("alpha", Role.USER), token("beta", Role.USER), token("ops", Role.ADMIN), 0)
        w.t0 = now - now % HOUR + 2 * HOUR
        assert client.post("/v1/topology", json=TOPOLOGY, headers=w.admin).status_code == 200
        yield w


def _ok(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json() if "json" in r.headers.get("content-type", "") else r.text


def own_everything(w: World) -> dict[str, str]:
    """Project alpha makes one of each id-bearing thing; the ids by kind."""
    c, a = w.client, w.alpha
    found = _ok(c.post("/v1/find-slot", json=w.request(), headers=a))
    ids = {"allocation_request": found["windows"][0]["allocation_request"]}
    job = _ok(c.post("/v1/find-slot", json=w.request(), headers={**a, "Prefer": "respond-async"}), 202)
    ids["find_slot_job"] = job["id"]
    offers = _ok(c.post("/v1/offer-sets", json={"request": w.request()}, headers=a), 201)
    lease = _ok(c.post(f"/v1/offers/{offers['offers'][-1]['id']}/accept", headers=a))
    offers = _ok(c.post("/v1/offer-sets", json={"request": w.request()}, headers=a), 201)
    ids["offer_set"] = offers["id"]
    ids["offer"] = offers["offers"][0]["id"]
    ids["lease"] = lease["uuid"]
    ids["job"] = "job-" + uuid.uuid4().hex[:12]
    body = {"id": ids["job"], "lease_id": ids["lease"], "provisioner": "simulated", "workload": {"command": ["true"]}}
    _ok(c.post("/v1/jobs", json=body, headers=a), 201)
    ivoa = {
        "executable": {"kind": IVOA_NOTEBOOK, "location": "https://example.org/n.ipynb"},
        "compute": {"kind": IVOA_COMPUTE, "cores": {"min": 1, "max": 1}, "memory": {"min": 1, "max": 1}},
        "schedule": {"requested": {"start": f"{iso(w.t0)}/PT0S", "duration": "PT1H"}},
    }
    r = c.post("/ivoa/requests", content=yaml.safe_dump(ivoa), headers={**a, "Content-Type": "application/yaml"})
    doc = yaml.safe_load(_ok(r))
    ids["ivoa_offerset"] = doc["meta"]["uuid"]
    ids["ivoa_session"] = doc["offers"][0]["meta"]["uuid"]
    return ids


def unused_like(value: str) -> str:
    """An id of the same shape and length that nobody uses."""
    try:
        uuid.UUID(value)
    except ValueError:
        return (value[:4] + uuid.uuid4().hex * 2)[: len(value)]
    return str(uuid.uuid4())


# (kind, method, path with {id}, JSON body with {id} strings replaced)
PROBES: list[tuple[str, str, str, Any]] = [
    ("job", "GET", "/v1/jobs/{id}", None),
    ("job", "POST", "/v1/jobs/{id}/cancel", None),
    ("job", "GET", "/v1/jobs/{id}/logs", None),
    ("job", "GET", "/v1/jobs/{id}/events", None),
    ("lease", "GET", "/v1/leases/{id}", None),
    ("lease", "PATCH", "/v1/leases/{id}", {"generation": 0}),
    ("lease", "POST", "/v1/leases/{id}/cancel", None),
    ("lease", "DELETE", "/v1/leases/{id}", None),
    ("lease", "DELETE", "/v1/claims/{id}", None),
    ("lease", "POST", "/v1/jobs", {"lease_id": "{id}", "provisioner": "simulated", "workload": {"command": ["x"]}}),
    ("offer_set", "GET", "/v1/offer-sets/{id}", None),
    ("offer", "GET", "/v1/offers/{id}", None),
    ("offer", "POST", "/v1/offers/{id}/accept", None),
    ("offer", "POST", "/v1/offers/{id}/reject", None),
    ("find_slot_job", "GET", "/v1/find-slot/jobs/{id}", None),
    ("allocation_request", "POST", "/v1/claims", {"allocation_request": "{id}"}),
    ("ivoa_offerset", "GET", "/ivoa/offersets/{id}", None),
    ("ivoa_session", "GET", "/ivoa/sessions/{id}", None),
    ("ivoa_session", "POST", "/ivoa/sessions/{id}", {"kind": "uri:enum-value-update", "path": "phase", "value": "ACCEPTED"}),
]


def _fill(body: Any, value: str) -> Any:
    if isinstance(body, dict):
        return {k: _fill(v, value) for k, v in body.items()}
    return value if body == "{id}" else body


def _seen(w: World, method: str, path: str, body: Any, value: str) -> tuple[int, dict[str, str], str]:
    """What project beta sees, with the id itself blanked out (and the Date header, which ticks)."""
    r = w.client.request(method, path.format(id=value), json=_fill(body, value), headers=w.beta)
    headers = {k: v for k, v in r.headers.items() if k.lower() != "date"}
    return r.status_code, headers, r.text.replace(value, "<id>")


def test_another_projects_ids_read_exactly_like_unused_ones(world: World) -> None:
    ids = own_everything(world)
    for kind, method, path, body in PROBES:
        theirs = _seen(world, method, path, body, ids[kind])
        nobodys = _seen(world, method, path, body, unused_like(ids[kind]))
        assert theirs == nobodys, (kind, method, path)
        assert theirs[0] == 404, (kind, method, path, theirs)
    # and alpha's things are untouched by beta's attempts
    assert _ok(world.client.get(f"/v1/leases/{ids['lease']}", headers=world.alpha))["status"] != "CANCELLED"
    assert _ok(world.client.get(f"/v1/offers/{ids['offer']}", headers=world.alpha))["state"] == "OFFERED"



def test_a_job_id_taken_by_another_project_reads_like_one_taken_by_your_own(world: World) -> None:
    """Job ids are chosen by clients and unique across projects, so a taken id cannot create a job; the
    refusal must not say whose it is (it used to answer 404 "no job <id>": the id exists elsewhere)."""
    ids = own_everything(world)
    c = world.client
    offers = _ok(c.post("/v1/offer-sets", json={"request": world.request()}, headers=world.beta), 201)
    beta_lease = _ok(c.post(f"/v1/offers/{offers['offers'][0]['id']}/accept", headers=world.beta))["uuid"]

    def create(headers: dict[str, str], lease: str) -> tuple[int, str]:
        body = {"id": ids["job"], "lease_id": lease, "provisioner": "simulated", "workload": {"command": ["x"]}}
        r = c.post("/v1/jobs", json=body, headers=headers)
        return r.status_code, r.text.replace(lease, "<lease>")

    assert create(world.beta, beta_lease) == create(world.alpha, ids["lease"])
    assert create(world.beta, beta_lease)[0] == 409
    assert c.get(f"/v1/jobs/{ids['job']}", headers=world.alpha).json()["project"] == "alpha"
