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
from slotbroker.services.access.tokens import Role, TokenService
from slotbroker.services.planner import Planner
from slotbroker.services.planner.provisioners.simulated import SimulatedConfig, SimulatedProvisioner
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
IVOA_COMPUTE = (
    "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/compute/simple-compute-resource.yaml"
)


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
    body = {
        "id": ids["job"],
        "lease_id": ids["lease"],
        "provisioner": "simulated",
        "workload": {"command": ["true"]},
    }
    _ok(c.post("/v1/jobs", json=body, headers=a), 201)
    ivoa = {
        "executable": {"kind": IVOA_NOTEBOOK, "location": "https://example.org/n.ipynb"},
        "compute": {"kind": IVOA_COMPUTE, "cores": {"min": 1, "max": 1}, "memory": {"min": 1, "max": 1}},
        "schedule": {"requested": {"start": f"{iso(w.t0)}/PT0S", "duration": "PT1H"}},
    }
    r = c.post(
        "/ivoa/requests", content=yaml.safe_dump(ivoa), headers={**a, "Content-Type": "application/yaml"}
    )
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
    (
        "lease",
        "POST",
        "/v1/jobs",
        {"lease_id": "{id}", "provisioner": "simulated", "workload": {"command": ["x"]}},
    ),
    ("lease", "GET", "/v1/leases/{id}.ics", None),
    ("lease", "PATCH", "/v1/leases/{id}", {"generation": 0, "name": "mine now"}),
    ("lease", "POST", "/v1/leases/{id}/cancel?force=true", None),
    ("offer_set", "GET", "/v1/offer-sets/{id}", None),
    ("offer_set", "PATCH", "/v1/offer-sets/{id}", {"name": "mine now"}),
    ("offer_set", "POST", "/v1/offer-sets/{id}/renew", None),
    ("offer", "GET", "/v1/offers/{id}", None),
    ("offer", "POST", "/v1/offers/{id}/accept", None),
    ("offer", "POST", "/v1/offers/{id}/reject", None),
    ("find_slot_job", "GET", "/v1/find-slot/jobs/{id}", None),
    ("allocation_request", "POST", "/v1/claims", {"allocation_request": "{id}"}),
    ("ivoa_offerset", "GET", "/ivoa/offersets/{id}", None),
    ("ivoa_session", "GET", "/ivoa/sessions/{id}", None),
    (
        "ivoa_session",
        "POST",
        "/ivoa/sessions/{id}",
        {"kind": "uri:enum-value-update", "path": "phase", "value": "ACCEPTED"},
    ),
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
    assert _ok(world.client.get(f"/v1/leases/{ids['lease']}", headers=world.alpha))["name"] != "mine now"
    assert _ok(world.client.get(f"/v1/offer-sets/{ids['offer_set']}", headers=world.alpha))["name"] == ""


def test_another_projects_id_prefixes_read_exactly_like_unused_ones(world: World) -> None:
    """Ids may be given as prefixes (issue 14): a prefix of another project's id matches nothing."""
    ids = own_everything(world)
    for kind, method, path, body in PROBES:
        if kind not in ("lease", "offer_set", "offer", "job") or "{id}" not in path or body is not None:
            continue
        if path.startswith("/v1/claims"):
            continue
        prefix = ids[kind][:8]
        theirs = _seen(world, method, path, body, prefix)
        nobodys = _seen(world, method, path, body, unused_like(ids[kind])[:8])
        assert theirs == nobodys, (kind, method, path)
        assert theirs[0] == 404, (kind, method, path, theirs)


def test_a_job_id_taken_by_another_project_reads_like_one_taken_by_your_own(world: World) -> None:
    """Job ids are chosen by clients and unique across projects, so a taken id cannot create a job; the
    refusal must not say whose it is (it used to answer 404 "no job <id>": the id exists elsewhere)."""
    ids = own_everything(world)
    c = world.client
    offers = _ok(c.post("/v1/offer-sets", json={"request": world.request()}, headers=world.beta), 201)
    beta_lease = _ok(c.post(f"/v1/offers/{offers['offers'][0]['id']}/accept", headers=world.beta))["uuid"]

    def create(headers: dict[str, str], lease: str) -> tuple[int, str]:
        body = {
            "id": ids["job"],
            "lease_id": lease,
            "provisioner": "simulated",
            "workload": {"command": ["x"]},
        }
        r = c.post("/v1/jobs", json=body, headers=headers)
        return r.status_code, r.text.replace(lease, "<lease>")

    assert create(world.beta, beta_lease) == create(world.alpha, ids["lease"])
    assert create(world.beta, beta_lease)[0] == 409
    assert c.get(f"/v1/jobs/{ids['job']}", headers=world.alpha).json()["project"] == "alpha"


def problem(r: Any, status: int, pointer: str) -> dict[str, Any]:
    """Assert ``r`` is a problem with this status naming ``pointer``; its body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body: dict[str, Any] = r.json()
    assert pointer in {e["pointer"] for e in body["errors"]}, body
    return body


# -- unknown query parameters --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "status", "name", "hint"),
    [
        ("/v1/providers?site=MICH", 422, "site", None),
        ("/v1/providers?knd=host", 422, "knd", "did you mean `kind`?"),
        ("/v1/jobs?stat=running", 422, "stat", "did you mean `state`?"),
        ("/v1/leases?limit=5&curser=x", 422, "curser", "did you mean `cursor`?"),
        ("/v1/leases/00000000-0000-4000-8000-000000000000?verbose=1", 422, "verbose", None),
        ("/ivoa/offersets/00000000-0000-4000-8000-000000000000?format=json", 400, "format", None),
        (
            "/calendar?start_time=2030-01-01T00:00:00Z&end_time=2030-01-02T00:00:00Z&sites=X",
            400,
            "sites",
            "`site`",
        ),
        ("/healthz?verbose=1", 422, "verbose", "takes none"),
    ],
)
def test_an_unknown_query_parameter_is_refused_naming_it(
    world: World, url: str, status: int, name: str, hint: str | None
) -> None:
    json_please = {**world.alpha, "Accept": "application/json"}  # /ivoa answers YAML by default
    body = problem(world.client.get(url, headers=json_please), status, f"#/query/{name}")
    assert body["code"] == "validation_error"
    if hint is not None:
        assert hint in body["detail"], body


def test_the_claim_fast_path_refuses_query_parameters_too(world: World) -> None:
    c, a = world.client, world.alpha
    host = _ok(c.get("/v1/providers?name=hq-h1", headers=a))["items"][0]["uuid"]  # the token is cached now
    item = {"provider_uuid": host, "resource_class": "VCPU", "amount": 1}
    body = {"items": [item], "start": iso(world.t0), "end": iso(world.t0 + HOUR)}
    problem(c.post("/v1/claims?dry_run=1", json=body, headers=a), 422, "#/query/dry_run")
    assert _ok(c.get("/v1/leases", headers=a))["items"] == []  # and nothing was claimed
    _ok(c.post("/v1/claims", json=body, headers=a), 201)


def test_declared_query_parameters_still_parse_from_strings(world: World) -> None:
    hosts = _ok(world.client.get("/v1/providers?kind=host&limit=5", headers=world.alpha))["items"]
    assert [h["name"] for h in hosts] == ["hq-h1"]
    assert _ok(world.client.get("/v1/jobs?limit=3&state=running", headers=world.alpha))["items"] == []


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.from_regex(r"[a-z][a-z_]{0,11}", fullmatch=True))
def test_any_undeclared_parameter_on_the_provider_list_is_refused(world: World, name: str) -> None:
    declared = {"kind", "parent", "trait", "member_of", "name", "cursor", "limit"}
    r = world.client.get("/v1/providers", params={name: "x"}, headers=world.alpha)
    if name in declared:
        assert f"#/query/{name}" not in r.text
    else:
        problem(r, 422, f"#/query/{name}")


# -- unknown resource classes --------------------------------------------------------------------------------
def test_a_mistyped_class_is_refused_with_the_closest_name(world: World) -> None:
    c, a = world.client, world.alpha
    req = world.request()
    req["components"][0]["resources"]["GPU_A3O"] = 1
    for url, body, where in (
        ("/v1/find-slot", req, ""),
        ("/v1/offer-sets", {"request": req}, "/request"),
        (
            "/v1/jobs",
            {"offer_set": {"request": req}, "provisioner": "simulated", "workload": {"command": ["x"]}},
            "/offer_set/request",
        ),
    ):
        got = problem(c.post(url, json=body, headers=a), 422, f"{where}/components/0/resources/GPU_A3O")
        assert "did you mean GPU_A30?" in got["detail"], (url, got)
    elastic = world.request()
    elastic["components"][0]["elastic"] = {"MEMORY_GB": {"min": 1, "max": 2}}
    got = problem(c.post("/v1/find-slot", json=elastic, headers=a), 422, "/components/0/elastic/MEMORY_GB")
    assert "did you mean MEMORY_MB?" in got["detail"], got
    fabric = {
        "start": iso(world.t0),
        "end": iso(world.t0 + 24 * HOUR),
        "duration": 1,
        "resources": [{"type": "compute", "cores": 2, "components": {"GPU_A3O": 1}}],
    }
    got = problem(
        c.post("/calendar/find-slot", json=fabric, headers=a), 400, "/resources/0/components/GPU_A3O"
    )
    assert "did you mean GPU_A30?" in got["detail"], got
    got = problem(
        c.get("/v1/allocation-candidates?resources=VCPU:1,GPU_A3O:1", headers=a), 422, "#/query/resources"
    )
    assert "did you mean GPU_A30?" in got["detail"]
    # nothing was written on the way to the refusal
    assert _ok(c.get("/v1/leases", headers=a))["items"] == []


def test_stocked_standard_and_registered_classes_are_known(world: World) -> None:
    c = world.client
    _ok(c.post("/v1/resource-classes", json={"name": "CUSTOM_FLUX"}, headers=world.admin), 201)
    req = world.request()
    req["components"][0]["resources"].update({"GPU_A30": 1, "DISK_GB": 1})
    assert _ok(c.post("/v1/find-slot", json=req, headers=world.alpha))["windows"] == []  # no disk stocked
    req["components"][0]["resources"] = {"GPU_A30": 1, "CUSTOM_FLUX": 1}
    assert _ok(c.post("/v1/find-slot", json=req, headers=world.alpha))["windows"] == []  # none stocked
    req["components"][0]["resources"] = {"GPU_A30": 2, "VCPU": 4}
    assert _ok(c.post("/v1/find-slot", json=req, headers=world.alpha))["windows"]
    assert _ok(c.get("/v1/allocation-candidates?resources=GPU_A30:1", headers=world.alpha))[
        "allocation_requests"
    ]


# -- booleans are not numbers --------------------------------------------------------------------------------
def test_a_boolean_quota_is_refused_and_nothing_is_stored(world: World) -> None:
    c, admin = world.client, world.admin
    for value in (False, True, "5", 5.5):
        r = c.put("/v1/quotas/alpha/VCPU", json={"max_concurrent": value}, headers=admin)
        problem(r, 422, "/max_concurrent")
    assert c.get("/v1/quotas/alpha/VCPU", headers=admin).status_code == 404
    assert (
        _ok(c.put("/v1/quotas/alpha/VCPU", json={"max_concurrent": 0}, headers=admin))["max_concurrent"] == 0
    )


def test_booleans_are_refused_wherever_a_body_carries_a_number(world: World) -> None:
    c, a, admin = world.client, world.alpha, world.admin
    host = _ok(c.get("/v1/providers?name=hq-h1", headers=admin))["items"][0]["uuid"]
    req = world.request()
    cases: list[tuple[str, str, dict[str, str], Any, str]] = [
        ("POST", "/v1/find-slot", a, {**req, "limit": True}, "/limit"),
        (
            "POST",
            "/v1/find-slot",
            a,
            {**req, "components": [{"name": "c", "count": True, "resources": {"VCPU": 1}}]},
            "/components/0/count",
        ),
        (
            "POST",
            "/v1/find-slot",
            a,
            {**req, "components": [{"name": "c", "resources": {"VCPU": True}}]},
            "/components/0/resources/VCPU",
        ),
        ("POST", "/v1/offer-sets", a, {"request": req, "max_offers": True}, "/max_offers"),
        (
            "POST",
            "/v1/claims",
            a,
            {
                "items": [{"provider_uuid": host, "resource_class": "VCPU", "amount": True}],
                "start": iso(world.t0),
                "end": iso(world.t0 + HOUR),
            },
            "/items/0/amount",
        ),
        (
            "PUT",
            f"/v1/providers/{host}/inventories/DISK_GB",
            admin,
            {"generation": 1, "total": True},
            "/total",
        ),
        (
            "POST",
            "/v1/providers",
            admin,
            {"name": "hq-b", "kind": "site", "location": {"lat": True, "lon": 0}},
            "/location/lat",
        ),
    ]
    for method, url, headers, body, pointer in cases:
        problem(c.request(method, url, json=body, headers=headers), 422, pointer)
    assert (
        _ok(c.get(f"/v1/providers/{host}/inventories", headers=admin))["inventories"].get("DISK_GB") is None
    )
    assert _ok(c.get("/v1/leases", headers=a))["items"] == []
