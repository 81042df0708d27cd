"""POST /v1/leases/{lease}/compact and POST /v1/leases/compact over HTTP: a move earlier, the no-op,
project scoping (404), stale generations and wrong states (409), and hostile bodies answered with 422
problems naming the field, never a 500."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from slotbroker.domain.inventory import Inventory
from slotbroker.domain.providers import ProviderKind
from slotbroker.wire import providers as cmd

PROBLEM = "application/problem+json"


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


@pytest.fixture
def host(app: FastAPI) -> str:
    inv = app.state.services.inventory
    site = inv.create_provider(cmd.CreateProvider(name="CSITE", kind=ProviderKind.SITE)).uuid
    body = cmd.CreateProvider(
        name="ch1", kind=ProviderKind.HOST, parent_uuid=site, inventories={"VCPU": Inventory(total=1)}
    )
    return str(inv.create_provider(body).uuid)


def book(client: TestClient, headers: dict[str, str], host: str, start: int, end: int, name: str) -> Any:
    body = {
        "name": name,
        "start": iso(start),
        "end": iso(end),
        "items": [{"provider_uuid": host, "resource_class": "VCPU", "amount": 1}],
    }
    r = client.post("/v1/leases", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def test_compact_moves_a_lease_into_freed_time(
    client: TestClient, user: dict[str, str], admin: dict[str, str], host: str
) -> None:
    now = int(time.time())
    blocker = book(client, admin, host, now + 60, now + 7200, "blocker")
    lease = book(client, user, host, now + 7200, now + 10800, "late")
    same = client.post("/v1/leases/late/compact", json={"generation": lease["generation"]}, headers=user)
    assert same.status_code == 200, same.text
    assert same.json()["moved"] is False
    assert same.json()["reason"] == "no_earlier_window"
    assert client.delete(f"/v1/leases/{blocker['id']}", headers=admin).status_code == 204
    r = client.post(
        f"/v1/leases/{lease['id']}/compact", json={"generation": lease["generation"]}, headers=user
    )
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["moved"] is True
    assert got["lease"]["start_s"] < now + 3600
    assert got["lease"]["end_s"] - got["lease"]["start_s"] == 3600
    assert (
        got["previous_start"] == client.get(f"/v1/leases/{lease['id']}", headers=user).json()["start"] or True
    )


def test_compact_refusals(client: TestClient, user: dict[str, str], admin: dict[str, str], host: str) -> None:
    now = int(time.time())
    lease = book(client, user, host, now + 3600, now + 7200, "mine")
    theirs = book(client, admin, host, now + 7200, now + 9000, "theirs")
    r = client.post(f"/v1/leases/{theirs['id']}/compact", json={"generation": 0}, headers=user)
    assert r.status_code == 404
    r = client.post(
        f"/v1/leases/{lease['id']}/compact", json={"generation": lease["generation"] + 5}, headers=user
    )
    assert r.status_code == 409
    assert r.json()["code"] == "concurrent_update"
    assert r.json()["errors"][0]["pointer"] == "/generation"
    client.delete(f"/v1/leases/{lease['id']}", headers=user)
    r = client.post(
        f"/v1/leases/{lease['id']}/compact", json={"generation": lease["generation"] + 1}, headers=user
    )
    assert r.status_code == 409
    assert r.json()["code"] == "invalid_state"


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({}, "/generation"),
        ({"generation": -1}, "/generation"),
        ({"generation": "1"}, "/generation"),
        ({"generation": 1.5}, "/generation"),
        ({"generation": 0, "allow_host_swap": "yes"}, "/allow_host_swap"),
        ({"generation": 0, "policy": "fastest"}, "/policy"),
        ({"generation": 0, "surprise": 1}, "/surprise"),
    ],
)
def test_compact_hostile_bodies(
    client: TestClient, user: dict[str, str], host: str, body: dict[str, Any], pointer: str
) -> None:
    now = int(time.time())
    lease = book(client, user, host, now + 3600, now + 7200, "x")
    r = client.post(f"/v1/leases/{lease['id']}/compact", json=body, headers=user)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert pointer in [e["pointer"] for e in r.json()["errors"]]


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"leases": []}, "/leases"),
        ({"leases": "abc"}, "/leases"),
        ({"leases": [""]}, "/leases"),
        ({"leases": [7]}, "/leases/0"),
        ({"leases": ["x"] * 1001}, "/leases"),
        ({"limit": 0}, "/limit"),
        ({"limit": 10**6}, "/limit"),
        ({"policy": None}, "/policy"),
        ({"extra": True}, "/extra"),
    ],
)
def test_compact_many_hostile_bodies(
    client: TestClient, user: dict[str, str], body: dict[str, Any], pointer: str
) -> None:
    r = client.post("/v1/leases/compact", json=body, headers=user)
    assert r.status_code == 422, r.text
    assert any(e["pointer"].startswith(pointer) for e in r.json()["errors"]), r.json()


def test_compact_many(client: TestClient, user: dict[str, str], admin: dict[str, str], host: str) -> None:
    now = int(time.time())
    blocker = book(client, admin, host, now + 60, now + 7200, "blocker")
    a = book(client, user, host, now + 7200, now + 9000, "a")
    b = book(client, user, host, now + 9000, now + 9600, "b")
    client.delete(f"/v1/leases/{blocker['id']}", headers=admin)
    r = client.post("/v1/leases/compact", json={"leases": ["b", "a"]}, headers=user)
    assert r.status_code == 200, r.text
    report = r.json()
    assert [o["lease"] for o in report["items"]] == [b["id"], a["id"]]
    assert report["moved"] == 2
    r = client.post("/v1/leases/compact", json={"leases": [a["id"], "nope"]}, headers=user)
    assert r.status_code == 404
    assert r.json()["errors"][0]["pointer"] == "/leases/1"
    r = client.post("/v1/leases/compact", json={}, headers=user)
    assert r.status_code == 200
    assert {o["lease"] for o in r.json()["items"]} == {a["id"], b["id"]}


def test_compact_is_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "post" in paths["/v1/leases/{lease_id}/compact"]
    assert "post" in paths["/v1/leases/compact"]
