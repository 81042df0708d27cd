"""Provider attributes over the providers API: set on create, replaced or cleared by PUT (a new
generation, the calendar untouched: placement does not read them), checked like every field."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from slotbroker.store.unit_of_work import UnitOfWork

H = dict[str, str]


def calendar_generation(client: TestClient) -> int:
    with UnitOfWork(client.app.state.services.db, readonly=True) as uow:  # type: ignore[attr-defined]
        return uow.calendar.generation()


def test_attributes_are_set_replaced_and_cleared(client: TestClient, admin: H, user: H) -> None:
    site = client.post("/v1/providers", json={"name": "s1", "kind": "site"}, headers=admin).json()
    body: dict[str, Any] = {
        "name": "h1",
        "kind": "host",
        "parent_uuid": site["uuid"],
        "attributes": {"ssh_host": "10.0.0.7", "ssh_user": "jobs"},
    }
    r = client.post("/v1/providers", json=body, headers=admin)
    assert r.status_code == 201, r.text
    host = r.json()
    assert host["attributes"] == {"ssh_host": "10.0.0.7", "ssh_user": "jobs"}
    assert client.get(f"/v1/providers/{site['uuid']}", headers=user).json()["attributes"] == {}

    patch = {"generation": host["generation"], "attributes": {"ssh_host": "10.0.0.8"}}
    before = calendar_generation(client)
    r = client.put(f"/v1/providers/{host['uuid']}", json=patch, headers=admin)
    assert r.status_code == 200, r.text
    assert calendar_generation(client) == before
    assert r.json()["attributes"] == {"ssh_host": "10.0.0.8"}
    assert r.json()["generation"] == host["generation"] + 1
    exported = client.get("/v1/topology", headers=user).json()["providers"][0]["children"][0]
    assert exported["attributes"] == {"ssh_host": "10.0.0.8"}

    # a PUT without attributes keeps them; null clears them
    renamed = client.put(
        f"/v1/providers/{host['uuid']}",
        json={"generation": r.json()["generation"], "name": "h2"},
        headers=admin,
    ).json()
    assert renamed["attributes"] == {"ssh_host": "10.0.0.8"}
    cleared = client.put(
        f"/v1/providers/{host['uuid']}",
        json={"generation": renamed["generation"], "attributes": None},
        headers=admin,
    ).json()
    assert cleared["attributes"] == {}
    assert "attributes" not in client.get("/v1/topology", headers=user).json()["providers"][0]["children"][0]


def test_bad_attributes_are_422_naming_the_field(client: TestClient, admin: H) -> None:
    for attributes, pointer in (
        ({"SSH": "x"}, "/attributes/SSH"),
        ({"ssh_port": 22}, "/attributes/ssh_port"),
        ({"ssh_host": "x" * 1025}, "/attributes/ssh_host"),
    ):
        r = client.post(
            "/v1/providers", json={"name": "s", "kind": "site", "attributes": attributes}, headers=admin
        )
        assert r.status_code == 422, r.text
        assert any(e["pointer"].startswith(pointer) for e in r.json()["errors"]), r.json()
    assert client.get("/v1/providers", headers=admin).json()["items"] == []
