"""/v1/resource-classes, /v1/traits, /v1/aggregates, /v1/links and /v1/facility-ports."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from slotbroker.store.db import Database
from slotbroker.store.models import AllocationRow, CalendarStateRow, ConsumerRow, ProviderRow

H = dict[str, str]


def problem(r: Any, status: int, code: str, *pointers: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = dict(r.json())
    assert body["code"] == code, body
    got = {e["pointer"] for e in body.get("errors", [])}
    for p in pointers:
        assert p in got, (p, body)
    return body


def create(client: TestClient, headers: H, **body: Any) -> dict[str, Any]:
    r = client.post("/v1/providers", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def calendar_generation(db: Database) -> int:
    with db.session(readonly=True) as s:
        return int(s.scalar(select(func.sum(CalendarStateRow.generation))) or 0)


def provider_count(db: Database) -> int:
    with db.session(readonly=True) as s:
        return int(s.scalar(select(func.count()).select_from(ProviderRow)) or 0)


# -- resource classes ----------------------------------------------------------------------------------


def test_resource_classes(client: TestClient, admin: H, operator: H, user: H) -> None:
    listed = client.get("/v1/resource-classes", headers=user).json()
    assert {c["name"] for c in listed} == {"VCPU", "MEMORY_MB", "DISK_GB", "BANDWIDTH_GBPS", "VLAN"}
    assert {c["kind"] for c in listed} == {"standard"}

    body = {"name": "CUSTOM_SMARTNIC", "description": "BlueField"}
    problem(client.post("/v1/resource-classes", json=body, headers=operator), 403, "forbidden")
    problem(client.post("/v1/resource-classes", json=body, headers=user), 403, "forbidden")
    r = client.post("/v1/resource-classes", json=body, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json() == {"name": "CUSTOM_SMARTNIC", "kind": "custom", "description": "BlueField"}
    problem(client.post("/v1/resource-classes", json=body, headers=admin), 409, "already_exists", "/name")
    problem(
        client.post("/v1/resource-classes", json={"name": "SMARTNIC"}, headers=admin),
        422,
        "validation_error",
        "/name",
    )
    problem(
        client.post("/v1/resource-classes", json={"name": "CUSTOM_lower"}, headers=admin),
        422,
        "validation_error",
        "/name",
    )
    assert client.get("/v1/resource-classes/CUSTOM_SMARTNIC", headers=user).json()["kind"] == "custom"

    # device classes need no registration; they are listed after first use
    r = client.get("/v1/resource-classes/GPU_H100", headers=user)
    assert r.status_code == 200
    assert r.json()["kind"] == "device"
    assert "GPU_H100" not in {c["name"] for c in client.get("/v1/resource-classes", headers=user).json()}
    problem(client.get("/v1/resource-classes/WIDGET", headers=user), 404, "not_found")
    problem(client.get("/v1/resource-classes/CUSTOM_NOPE", headers=user), 404, "not_found")
    problem(client.get("/v1/resource-classes/lower", headers=user), 422, "validation_error", "#/path/name")

    site = create(client, operator, name="s", kind="site")
    host = create(
        client,
        operator,
        name="h",
        kind="host",
        parent_uuid=site["uuid"],
        inventories={"GPU_H100": 4, "FPGA_U280": 1, "NIC_CONNECTX6": 2, "CUSTOM_SMARTNIC": 2},
    )
    listed = {c["name"]: c for c in client.get("/v1/resource-classes", headers=user).json()}
    assert listed["GPU_H100"] == {"name": "GPU_H100", "kind": "device", "description": "GPU model H100"}
    assert listed["FPGA_U280"]["kind"] == "device"
    assert listed["NIC_CONNECTX6"]["description"] == "Network card model CONNECTX6"

    # in use -> 409; standard classes cannot be deleted; after use it can go
    problem(client.delete("/v1/resource-classes/CUSTOM_SMARTNIC", headers=admin), 409, "in_use")
    problem(client.delete("/v1/resource-classes/CUSTOM_SMARTNIC", headers=operator), 403, "forbidden")
    problem(client.delete("/v1/resource-classes/VCPU", headers=admin), 422, "validation_error")
    problem(client.delete("/v1/resource-classes/CUSTOM_NOPE", headers=admin), 404, "not_found")
    r = client.delete(
        f"/v1/providers/{host['uuid']}/inventories/CUSTOM_SMARTNIC",
        params={"generation": 0},
        headers=operator,
    )
    assert r.status_code == 200, r.text
    assert client.delete("/v1/resource-classes/CUSTOM_SMARTNIC", headers=admin).status_code == 204
    problem(client.get("/v1/resource-classes/CUSTOM_SMARTNIC", headers=user), 404, "not_found")


# -- traits and aggregates -----------------------------------------------------------------------------


def test_traits(client: TestClient, admin: H, operator: H, user: H) -> None:
    standard = client.get("/v1/traits", headers=user).json()
    assert {"HW_GPU_CUDA", "COMPUTE_VM"} <= {t["name"] for t in standard}
    assert not any(t["custom"] for t in standard)
    assert client.get("/v1/traits", params={"custom": True}, headers=user).json() == []

    r = client.put("/v1/traits/CUSTOM_RDMA_FAST", headers=admin)
    assert r.status_code == 201, r.text
    assert r.json() == {"name": "CUSTOM_RDMA_FAST", "custom": True}
    r = client.put("/v1/traits/CUSTOM_RDMA_FAST", headers=admin)
    assert r.status_code == 200
    assert r.json() == {"name": "CUSTOM_RDMA_FAST", "custom": True}
    assert client.get("/v1/traits", params={"custom": True}, headers=user).json() == [
        {"name": "CUSTOM_RDMA_FAST", "custom": True}
    ]
    assert client.get("/v1/traits/CUSTOM_RDMA_FAST", headers=user).json()["custom"] is True
    problem(client.put("/v1/traits/CUSTOM_X", headers=operator), 403, "forbidden")
    problem(client.put("/v1/traits/HW_NEW", headers=admin), 422, "validation_error")
    problem(client.put("/v1/traits/lower", headers=admin), 422, "validation_error", "#/path/name")
    problem(client.get("/v1/traits/CUSTOM_NOPE", headers=user), 404, "not_found")

    site = create(client, operator, name="s", kind="site", traits=["CUSTOM_RDMA_FAST"])
    problem(client.delete("/v1/traits/CUSTOM_RDMA_FAST", headers=admin), 409, "in_use")
    problem(client.delete("/v1/traits/COMPUTE_VM", headers=admin), 422, "validation_error")
    r = client.put(f"/v1/providers/{site['uuid']}/traits", json={"generation": 0, "names": []}, headers=admin)
    assert r.status_code == 200, r.text
    assert client.delete("/v1/traits/CUSTOM_RDMA_FAST", headers=admin).status_code == 204
    problem(client.delete("/v1/traits/CUSTOM_RDMA_FAST", headers=admin), 404, "not_found")


def test_aggregates(client: TestClient, admin: H, user: H) -> None:
    assert client.get("/v1/aggregates", headers=user).json() == []
    create(client, admin, name="a", kind="site", aggregates=["core", "east"])
    create(client, admin, name="b", kind="site", aggregates=["core"])
    c = create(client, admin, name="c", kind="region", aggregates=["west"])
    assert client.get("/v1/aggregates", headers=user).json() == [
        {"name": "core", "members": 2},
        {"name": "east", "members": 1},
        {"name": "west", "members": 1},
    ]
    r = client.put(
        f"/v1/providers/{c['uuid']}/aggregates", json={"generation": 0, "names": ["core"]}, headers=admin
    )
    assert r.status_code == 200
    assert client.get("/v1/aggregates", headers=user).json() == [
        {"name": "core", "members": 3},
        {"name": "east", "members": 1},
    ]


# -- links ---------------------------------------------------------------------------------------------


@pytest.fixture
def sites(client: TestClient, admin: H) -> dict[str, dict[str, Any]]:
    region = create(client, admin, name="us", kind="region")
    out = {"region": region}
    for name in ("STAR", "NEWY", "WASH"):
        out[name] = create(client, admin, name=name, kind="site", parent_uuid=region["uuid"])
    out["host"] = create(client, admin, name="star-w1", kind="host", parent_uuid=out["STAR"]["uuid"])
    return out


def test_links_crud(client: TestClient, admin: H, user: H, db: Database, sites: dict[str, Any]) -> None:
    gen0 = calendar_generation(db)
    body = {"name": "STAR-NEWY", "endpoints": ["STAR", "NEWY"], "bandwidth_gbps": 100, "latency_ms": 12.5}
    problem(client.post("/v1/links", json=body, headers=user), 403, "forbidden")
    r = client.post("/v1/links", json=body, headers=admin)
    assert r.status_code == 201, r.text
    link = r.json()
    assert link["endpoints"] == ["STAR", "NEWY"]
    assert link["bandwidth_gbps"] == 100
    assert link["latency_ms"] == 12.5
    assert link["generation"] == 0
    assert calendar_generation(db) > gen0
    assert client.get(f"/v1/links/{link['uuid']}", headers=user).json() == link
    assert client.get("/v1/links", headers=user).json() == [link]
    # it is a provider underneath, with a BANDWIDTH_GBPS inventory, but not in the tree listing
    inv = client.get(f"/v1/providers/{link['uuid']}/inventories", headers=user).json()
    assert inv["inventories"]["BANDWIDTH_GBPS"]["total"] == 100
    assert "STAR-NEWY" not in [p["name"] for p in client.get("/v1/providers", headers=user).json()["items"]]
    listed = client.get("/v1/providers", params={"kind": "link"}, headers=user).json()["items"]
    assert [p["name"] for p in listed] == ["STAR-NEWY"]

    before = provider_count(db)
    problem(client.post("/v1/links", json=body, headers=admin), 409, "already_exists", "/name")
    problem(
        client.post("/v1/links", json={**body, "name": "x", "endpoints": ["STAR", "STAR"]}, headers=admin),
        422,
        "validation_error",
        "/endpoints",
    )
    problem(
        client.post("/v1/links", json={**body, "name": "x", "endpoints": ["STAR", "us"]}, headers=admin),
        422,
        "validation_error",
        "/endpoints/1",
    )
    problem(
        client.post("/v1/links", json={**body, "name": "x", "endpoints": ["star-w1", "NEWY"]}, headers=admin),
        422,
        "validation_error",
        "/endpoints/0",
    )
    problem(
        client.post("/v1/links", json={**body, "name": "x", "endpoints": ["STAR", "MARS"]}, headers=admin),
        422,
        "validation_error",
        "/endpoints/1",
    )
    problem(
        client.post("/v1/links", json={**body, "name": "x", "bandwidth_gbps": 0}, headers=admin),
        422,
        "validation_error",
        "/bandwidth_gbps",
    )
    problem(
        client.post("/v1/links", json={**body, "name": "x", "latency_ms": -1}, headers=admin),
        422,
        "validation_error",
        "/latency_ms",
    )
    problem(
        client.post("/v1/links", json={**body, "name": "x", "endpoints": ["STAR"]}, headers=admin),
        422,
        "validation_error",
    )
    assert provider_count(db) == before

    url = f"/v1/links/{link['uuid']}"
    r = client.put(url, json={"generation": 0, "bandwidth_gbps": 400}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["bandwidth_gbps"] == 400
    assert r.json()["latency_ms"] == 12.5
    assert r.json()["generation"] == 1
    problem(
        client.put(url, json={"generation": 0, "latency_ms": 3}, headers=admin),
        409,
        "concurrent_update",
        "/generation",
    )
    r = client.put(url, json={"generation": 1, "latency_ms": 3}, headers=admin)
    assert r.status_code == 200, r.text
    assert (r.json()["latency_ms"], r.json()["bandwidth_gbps"], r.json()["generation"]) == (3.0, 400, 2)
    r = client.put(url, json={"generation": 2}, headers=admin)  # nothing asked, nothing changes
    assert r.status_code == 200
    assert r.json()["generation"] == 2

    # a site with links cannot go; the link can, then the site can
    problem(client.delete(f"/v1/providers/{sites['NEWY']['uuid']}", headers=admin), 409, "in_use")
    problem(client.delete(f"/v1/providers/{link['uuid']}", headers=admin), 422, "validation_error")
    problem(client.get(f"/v1/links/{sites['STAR']['uuid']}", headers=user), 404, "not_found")
    problem(client.get(f"/v1/links/{uuid.uuid4()}", headers=user), 404, "not_found")
    assert client.delete(url, headers=admin).status_code == 204
    problem(client.get(url, headers=user), 404, "not_found")
    problem(client.delete(url, headers=admin), 404, "not_found")
    assert client.delete(f"/v1/providers/{sites['NEWY']['uuid']}", headers=admin).status_code == 204


def test_link_bandwidth_respects_bookings(client: TestClient, admin: H, db: Database, sites: Any) -> None:
    body = {"name": "L", "endpoints": ["STAR", "WASH"], "bandwidth_gbps": 100}
    link = client.post("/v1/links", json=body, headers=admin).json()
    now = int(time.time())
    with db.session() as s, s.begin():
        pid = s.scalar(select(ProviderRow.id).where(ProviderRow.uuid == link["uuid"]))
        assert pid is not None
        lease = ConsumerRow(
            uuid=str(uuid.uuid4()),
            kind="lease",
            project="p",
            status="active",
            start_s=now + 60,
            end_s=now + 600,
        )
        lease.allocations = [
            AllocationRow(
                provider_id=pid, resource_class="BANDWIDTH_GBPS", amount=40, start_s=now + 60, end_s=now + 600
            )
        ]
        s.add(lease)
    url = f"/v1/links/{link['uuid']}"
    problem(client.put(url, json={"generation": 0, "bandwidth_gbps": 39}, headers=admin), 409, "in_use")
    assert client.get(url, headers=admin).json()["bandwidth_gbps"] == 100
    r = client.put(url, json={"generation": 0, "bandwidth_gbps": 40}, headers=admin)
    assert r.status_code == 200, r.text
    problem(client.delete(url, headers=admin), 409, "in_use")


# -- facility ports ------------------------------------------------------------------------------------


def test_facility_ports_crud(client: TestClient, admin: H, user: H, db: Database, sites: Any) -> None:
    body = {
        "name": "Cloud-AWS",
        "site": "STAR",
        "device": "star-sw1",
        "vlans": "300-310, 100-200,201",
        "bandwidth_gbps": 100,
    }
    r = client.post("/v1/facility-ports", json=body, headers=admin)
    assert r.status_code == 201, r.text
    port = r.json()
    assert port["vlans"] == "100-201,300-310"
    assert port["vlan_count"] == 102 + 11
    assert port["site"] == "STAR"
    assert port["name"] == "Cloud-AWS"
    assert port["device"] == "star-sw1"
    assert port["generation"] == 0
    assert client.get(f"/v1/facility-ports/{port['uuid']}", headers=user).json() == port
    assert client.get("/v1/facility-ports", headers=user).json() == [port]
    # same port name at another site is fine; at the same site it is taken
    r = client.post("/v1/facility-ports", json={**body, "site": "NEWY"}, headers=admin)
    assert r.status_code == 201, r.text
    problem(client.post("/v1/facility-ports", json=body, headers=admin), 409, "already_exists", "/name")
    problem(
        client.post("/v1/facility-ports", json={**body, "name": "x", "site": "star-w1"}, headers=admin),
        422,
        "validation_error",
        "/site",
    )

    url = f"/v1/facility-ports/{port['uuid']}"
    r = client.put(url, json={"generation": 0, "vlans": "100-150"}, headers=admin)
    assert r.status_code == 200, r.text
    assert (r.json()["vlans"], r.json()["vlan_count"], r.json()["generation"]) == ("100-150", 51, 1)
    assert r.json()["device"] == "star-sw1"
    r = client.put(url, json={"generation": 1, "bandwidth_gbps": 10, "device": None}, headers=admin)
    assert r.status_code == 200, r.text
    assert (r.json()["bandwidth_gbps"], r.json()["device"], r.json()["generation"]) == (10, None, 2)
    problem(
        client.put(url, json={"generation": 1, "vlans": "1-5"}, headers=admin),
        409,
        "concurrent_update",
        "/generation",
    )
    for bad in ("200-100", "0-5", "abc", "5000", "", "1-2-3", "100,,200"):
        problem(
            client.put(url, json={"generation": 2, "vlans": bad}, headers=admin),
            422,
            "validation_error",
            "/vlans",
        )
    assert client.get(url, headers=user).json()["vlans"] == "100-150"

    # VLAN tags and bandwidth in use cannot be taken away
    now = int(time.time())
    with db.session() as s, s.begin():
        pid = s.scalar(select(ProviderRow.id).where(ProviderRow.uuid == port["uuid"]))
        assert pid is not None
        lease = ConsumerRow(
            uuid=str(uuid.uuid4()),
            kind="lease",
            project="p",
            status="active",
            start_s=now + 60,
            end_s=now + 600,
        )
        lease.allocations = [
            AllocationRow(
                provider_id=pid,
                resource_class="VLAN",
                amount=1,
                start_s=now + 60,
                end_s=now + 600,
                vlan_tag=140,
            ),
            AllocationRow(
                provider_id=pid,
                resource_class="VLAN",
                amount=1,
                start_s=now + 60,
                end_s=now + 600,
                vlan_tag=141,
            ),
            AllocationRow(
                provider_id=pid, resource_class="BANDWIDTH_GBPS", amount=5, start_s=now + 60, end_s=now + 600
            ),
        ]
        s.add(lease)
    problem(
        client.put(url, json={"generation": 2, "vlans": "100-139"}, headers=admin), 409, "in_use", "/vlans"
    )
    problem(client.put(url, json={"generation": 2, "vlans": "141"}, headers=admin), 409, "in_use", "/vlans")
    problem(client.put(url, json={"generation": 2, "bandwidth_gbps": 4}, headers=admin), 409, "in_use")
    r = client.put(url, json={"generation": 2, "vlans": "140-141"}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["vlan_count"] == 2
    problem(client.delete(url, headers=admin), 409, "in_use")
    problem(client.delete(f"/v1/providers/{sites['STAR']['uuid']}", headers=admin), 409, "in_use")


@pytest.mark.parametrize("vlans", ["200-100", "0-5", "abc", "5000", "4094-4095", " ", "-5"])
def test_facility_port_bad_vlans(client: TestClient, admin: H, db: Database, sites: Any, vlans: str) -> None:
    before = provider_count(db)
    body = {"name": "p", "site": "STAR", "vlans": vlans, "bandwidth_gbps": 10}
    problem(client.post("/v1/facility-ports", json=body, headers=admin), 422, "validation_error", "/vlans")
    assert provider_count(db) == before
