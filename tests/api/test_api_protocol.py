"""HTTP protocol: content negotiation, problem bodies, size limits, rate and in-flight limits, health."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient

from slotbroker.api.app import create_app
from slotbroker.config import Settings
from slotbroker.services.access.tokens import Role, TokenService
from slotbroker.store import migrate
from slotbroker.store.db import Database

H = dict[str, str]


def make_app(db: Database, **overrides: Any) -> FastAPI:
    settings: dict[str, Any] = {"rate_per_s": 10_000, "rate_burst": 10_000, **overrides}
    return create_app(Settings(database_url=db.url, migrate_on_start=False, **settings), db=db)


def token(db: Database, role: Role = Role.ADMIN) -> H:
    return {"Authorization": f"Bearer {TokenService(db).create(project='demo', role=role)}"}


# -- content negotiation --------------------------------------------------------------------------------


def test_json_by_default_yaml_on_request(client: TestClient, admin: H) -> None:
    r = client.post("/v1/providers", json={"name": "STAR", "kind": "site"}, headers=admin)
    assert r.status_code == 201
    assert r.headers["content-type"] == "application/json"

    for accept in (
        "",
        "*/*",
        "application/json",
        "application/json, application/yaml;q=0.9",
        "application/yaml;q=0.5, */*",
        "application/yaml;q=0",
    ):
        r = client.get("/v1/providers", headers={**admin, "Accept": accept})
        assert r.headers["content-type"] == "application/json", accept
        assert r.json()["items"][0]["name"] == "STAR"
    for accept in (
        "application/yaml",
        "text/yaml",
        "application/x-yaml",
        "application/json;q=0.5, application/yaml",
    ):
        r = client.get("/v1/providers", headers={**admin, "Accept": accept})
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/yaml", accept
        assert int(r.headers["content-length"]) == len(r.content)
        body = yaml.safe_load(r.text)
        assert body["items"][0]["name"] == "STAR"
        assert body["next_cursor"] is None


def test_problems_in_yaml(client: TestClient, admin: H) -> None:
    r = client.get("/v1/providers", headers={"Accept": "application/yaml"})
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/yaml"
    assert r.headers["www-authenticate"] == "Bearer"
    body = yaml.safe_load(r.text)
    assert body["code"] == "unauthorized"
    assert body["status"] == 401

    r = client.post(
        "/v1/providers",
        content=b"name: x\nkind: host\n",
        headers={**admin, "Content-Type": "application/yaml", "Accept": "application/yaml"},
    )
    assert r.status_code == 422
    body = yaml.safe_load(r.text)
    assert body["code"] == "validation_error"
    assert body["errors"][0]["pointer"] == "/parent_uuid"


def test_request_bodies(client: TestClient, admin: H) -> None:
    # YAML scalars that are not JSON (dates) still arrive as the strings a JSON client would send
    r = client.post(
        "/v1/providers",
        content=b"name: 2024-01-01\nkind: region\n",
        headers={**admin, "Content-Type": "application/yaml"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "2024-01-01"
    for i, ctype in enumerate(("application/json; charset=utf-8", "application/vnd.slotbroker+json")):
        r = client.post(
            "/v1/providers",
            content=json.dumps({"name": f"r{i}", "kind": "region"}).encode(),
            headers={**admin, "Content-Type": ctype},
        )
        assert r.status_code == 201, (ctype, r.text)
    r = client.post("/v1/providers", content=b"x", headers={**admin, "Content-Type": "text/plain"})
    assert r.status_code == 415
    assert r.json()["code"] == "unsupported_media_type"
    r = client.post("/v1/providers", headers=admin)  # no body at all
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"
    r = client.post(
        "/v1/providers", content=b"name: \x00", headers={**admin, "Content-Type": "application/yaml"}
    )
    assert r.status_code == 400
    assert r.json()["code"] == "malformed_body"
    r = client.post(
        "/v1/providers",
        content=b"!!python/object:os.system x",
        headers={**admin, "Content-Type": "application/yaml"},
    )
    assert r.status_code == 400
    assert r.json()["code"] == "malformed_body"


def test_unknown_routes_and_methods(client: TestClient, admin: H) -> None:
    r = client.get("/v1/nothing", headers=admin)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "not_found"
    r = client.patch("/v1/providers", headers=admin)
    assert r.status_code == 405
    assert r.json()["code"] == "method_not_allowed"


def test_openapi_document(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    assert "Problem" in schemas
    assert "HTTPValidationError" not in schemas
    post = doc["paths"]["/v1/providers"]["post"]
    assert set(post["requestBody"]["content"]) == {"application/json", "application/yaml"}
    assert "application/problem+json" in post["responses"]["422"]["content"]
    assert "application/yaml" in post["responses"]["201"]["content"]
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


# -- size limits ------------------------------------------------------------------------------------------


def test_size_limits(db: Database) -> None:
    app = make_app(db, max_body_bytes=200, max_topology_bytes=5000)
    headers = token(db)
    with TestClient(app) as c:
        pad = {"name": "x" * 150, "kind": "region", "location": {"lat": 1, "lon": 2}}
        r = c.post("/v1/providers", json=pad, headers=headers)
        assert r.status_code == 413
        assert r.json()["code"] == "payload_too_large"
        doc = {"providers": [{"name": f"site-{i}", "kind": "site"} for i in range(40)]}
        assert len(json.dumps(doc)) > 200
        r = c.post("/v1/topology", json=doc, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["created"] == 40
        doc = {"providers": [{"name": f"site-{i}", "kind": "site"} for i in range(400)]}
        r = c.post("/v1/topology", json=doc, headers=headers)
        assert r.status_code == 413
        # a chunked body with no Content-Length is measured as it streams
        r = c.post(
            "/v1/providers",
            content=iter([b'{"name": "', b"y" * 300, b'"}']),
            headers={**headers, "Content-Type": "application/json"},
        )
        assert r.status_code == 413
        assert len(c.get("/v1/providers", headers=headers).json()["items"]) == 40


# -- health and metrics ----------------------------------------------------------------------------------


def test_health_ready_metrics(client: TestClient, admin: H, db: Database) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200
    ready = r.json()
    assert ready["status"] == "ok"
    assert ready["migration"] == migrate.head_revision()
    assert ready["database"] == db.engine.dialect.name
    assert ready["calendar_generation"] == 0
    client.post(
        "/v1/providers", json={"name": "s", "kind": "site", "inventories": {"VCPU": 1}}, headers=admin
    )
    assert client.get("/readyz").json()["calendar_generation"] == 1

    client.get("/v1/providers", headers=admin)
    client.get("/v1/providers", headers=admin)
    client.get("/v1/nothing", headers=admin)
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'slotbroker_http_requests_total{method="GET",route="/v1/providers",status="200"} 2.0' in text
    assert 'slotbroker_http_requests_total{method="POST",route="/v1/providers",status="201"} 1.0' in text
    assert 'route="unmatched",status="404"' in text
    assert "slotbroker_http_request_seconds_bucket" in text
    assert "slotbroker_http_in_flight 1.0" in text  # this very request


def test_readyz_unavailable_before_migration(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/empty.db")
    try:
        with TestClient(make_app(db)) as c:
            r = c.get("/readyz")
            assert r.status_code == 503
            assert r.json()["code"] == "unavailable"
            assert c.get("/healthz").status_code == 200
            migrate.upgrade(db.engine)
            assert c.get("/readyz").status_code == 200
    finally:
        db.dispose()


# -- backpressure --------------------------------------------------------------------------------------


def test_rate_limit(db: Database) -> None:
    # A token comes back every 100 s: the test's own pace (slow CI machines included) cannot refill it.
    app = make_app(db, rate_per_s=0.01, rate_burst=2)
    a, b = token(db), token(db, Role.USER)
    with TestClient(app) as c:
        assert c.get("/v1/providers", headers=a).status_code == 200
        assert c.get("/v1/providers", headers=a).status_code == 200
        r = c.get("/v1/providers", headers=a)
        assert r.status_code == 429
        assert r.json()["code"] == "rate_limited"
        assert r.headers["content-type"] == "application/problem+json"
        assert int(r.headers["retry-after"]) >= 1
        # per token: another token still has its burst; health checks are never limited
        assert c.get("/v1/providers", headers=b).status_code == 200
        for _ in range(5):
            assert c.get("/healthz").status_code == 200
        # YAML clients get YAML problems here too
        r = c.get("/v1/providers", headers={**a, "Accept": "application/yaml"})
        assert r.status_code == 429
        assert yaml.safe_load(r.text)["code"] == "rate_limited"
        assert "slotbroker_http_requests_total" in c.get("/metrics").text


def test_in_flight_bound(db: Database) -> None:
    app = make_app(db, max_in_flight=0)
    headers = token(db)
    with TestClient(app) as c:
        r = c.get("/v1/providers", headers=headers)
        assert r.status_code == 503
        assert r.json()["code"] == "overloaded"
        assert r.headers["retry-after"] == "1"
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").status_code == 200


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_in_flight_bound_under_concurrency(db: Database) -> None:
    """With one slot, concurrent requests beyond it get 503 while the slot is busy, and none fail."""
    app = make_app(db, max_in_flight=1)
    headers = token(db)
    gate = asyncio.Event()

    @app.get("/slow")
    async def slow() -> dict[str, str]:
        await gate.wait()
        return {"ok": "yes"}

    async def scenario() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            first = asyncio.create_task(c.get("/slow", headers=headers))
            await asyncio.sleep(0.05)
            rest = await asyncio.gather(*(c.get("/slow", headers=headers) for _ in range(3)))
            gate.set()
            return [(await first).status_code, *(r.status_code for r in rest)]

    assert asyncio.run(scenario()) == [200, 503, 503, 503]
