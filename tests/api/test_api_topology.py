"""/v1/topology: atomic import of whole documents, export, idempotent re-import, pruning."""

from __future__ import annotations

import copy
import time
import uuid
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from slotbroker.demo.fabric import fabric_like_topology
from slotbroker.store.db import Database
from slotbroker.store.models import (
    AllocationRow,
    CalendarStateRow,
    ConsumerRow,
    InventoryRow,
    ProviderRow,
    ResourceClassRow,
    TraitRow,
)

H = dict[str, str]


def problem(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = dict(r.json())
    assert body["code"] == code, body
    return body


def state(db: Database) -> dict[str, Any]:
    """Everything an import could change: generations by name, row counts, the calendar generation."""
    with db.session(readonly=True) as s:
        return {
            "providers": dict(s.execute(select(ProviderRow.name, ProviderRow.generation)).all()),
            "inventories": s.scalar(select(func.count()).select_from(InventoryRow)),
            "classes": s.scalar(select(func.count()).select_from(ResourceClassRow)),
            "traits": s.scalar(select(func.count()).select_from(TraitRow)),
            "calendar": s.scalar(select(func.sum(CalendarStateRow.generation))),
        }


@pytest.fixture
def demo() -> dict[str, Any]:
    return dict(fabric_like_topology().model_dump(mode="json"))


def imported(client: TestClient, headers: H, doc: dict[str, Any], **params: Any) -> dict[str, Any]:
    r = client.post("/v1/topology", json=doc, params=params, headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_import_export_reimport(client: TestClient, operator: H, user: H, db: Database, demo: Any) -> None:
    topology = fabric_like_topology()
    nodes, links, ports = len(topology.walk()), len(topology.links), len(topology.facility_ports)
    calendar0 = state(db)["calendar"]
    report = imported(client, operator, demo)
    assert report["created"] == nodes + links + ports
    assert (report["updated"], report["unchanged"], report["deleted"]) == (0, 0, 0)
    assert report["calendar_generation"] == calendar0 + 1  # one bump for the whole import

    kinds: dict[str, int] = {}
    for item in client.get(
        "/v1/providers",
        params={"limit": 1000, "kind": ["region", "site", "host", "device", "link", "facility_port"]},
        headers=user,
    ).json()["items"]:
        kinds[item["kind"]] = kinds.get(item["kind"], 0) + 1
    assert sum(kinds.values()) == nodes + links + ports
    assert kinds["link"] == links
    assert kinds["facility_port"] == ports
    assert kinds["region"] == len(topology.providers)
    assert len(client.get("/v1/links", headers=user).json()) == links
    assert len(client.get("/v1/facility-ports", headers=user).json()) == ports
    star = client.get("/v1/providers", params={"name": "STAR"}, headers=user).json()["items"][0]
    assert star["location"] == {"lat": 41.896, "lon": -87.618}

    exported = client.get("/v1/topology", headers=user)
    assert exported.status_code == 200
    doc = exported.json()
    assert len(doc["links"]) == links
    assert len(doc["facility_ports"]) == ports
    assert all(region["uuid"] for region in doc["providers"])
    # compact inventories: a default-only inventory exports as its total
    host = doc["providers"][0]["children"][0]["children"][0]
    assert isinstance(host["inventories"]["VCPU"], int)

    before = state(db)
    for again in (doc, demo):  # the export and the original both re-import as no-ops
        report = imported(client, operator, again)
        assert (report["created"], report["updated"], report["deleted"]) == (0, 0, 0)
        assert report["unchanged"] == nodes + links + ports
        assert report["calendar_generation"] == before["calendar"]
        assert state(db) == before
    assert client.get("/v1/topology", headers=user).json() == doc


def test_yaml_import_and_export(client: TestClient, admin: H, db: Database, demo: Any) -> None:
    body = yaml.safe_dump(demo).encode()
    r = client.post("/v1/topology", content=body, headers={**admin, "Content-Type": "application/yaml"})
    assert r.status_code == 200, r.text
    assert r.json()["created"] > 100

    r = client.get("/v1/topology", headers={**admin, "Accept": "application/yaml"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/yaml")
    text = r.text
    exported = yaml.safe_load(text)
    assert exported == client.get("/v1/topology", headers=admin).json()
    before = state(db)
    r = client.post(
        "/v1/topology",
        content=text.encode(),
        headers={**admin, "Content-Type": "application/yaml", "Accept": "application/yaml"},
    )
    assert r.status_code == 200, r.text
    report = yaml.safe_load(r.text)
    assert (report["created"], report["updated"], report["deleted"]) == (0, 0, 0)
    assert state(db) == before


def test_invalid_document_lists_every_problem_and_writes_nothing(
    client: TestClient, admin: H, db: Database, demo: Any
) -> None:
    imported(client, admin, {"providers": [{"name": "OLD", "kind": "site", "inventories": {"VCPU": 1}}]})
    doc = copy.deepcopy(demo)
    region = doc["providers"][0]
    site = region["children"][0]
    site["children"][1]["name"] = site["children"][0]["name"]  # duplicate name
    region["children"].append({"name": "lost-host", "kind": "host"})  # host under a region
    site["children"][0]["inventories"]["WARP_DRIVE"] = 1  # unknown class
    site["children"][0]["inventories"]["CUSTOM_NEW"] = 1  # undeclared custom class
    site["children"][0]["traits"].append("CUSTOM_UNDECLARED")
    doc["links"][0]["endpoints"][1] = "ATLANTIS"  # link to an unknown site
    doc["facility_ports"][0]["site"] = "ATLANTIS"
    doc["traits"] = ["HW_NOT_CUSTOM"]
    before = state(db)

    r = client.post("/v1/topology", json=doc, headers=admin)
    body = problem(r, 422, "validation_error")
    pointers = {e["pointer"] for e in body["errors"]}
    s = "/providers/0/children/0"
    expected = {
        f"{s}/children/1/name",
        f"/providers/0/children/{len(region['children']) - 1}/kind",
        f"{s}/children/0/inventories/WARP_DRIVE",
        f"{s}/children/0/inventories/CUSTOM_NEW",
        f"{s}/children/0/traits/{len(site['children'][0]['traits']) - 1}",
        "/links/0/endpoints/1",
        "/facility_ports/0/site",
        "/traits/0",
    }
    assert expected <= pointers, pointers - expected
    assert len(body["errors"]) == len(expected)
    assert str(len(expected)) in body["detail"]
    assert state(db) == before

    # shape errors are reported by pointer too (before any database work)
    bad = copy.deepcopy(demo)
    bad["providers"][0]["children"][0]["children"][0]["inventories"]["VCPU"] = {"total": 4, "reserved": 9}
    bad["links"][0]["bandwidth_gbps"] = 0
    bad["facility_ports"][0]["vlans"] = "200-100"
    body = problem(client.post("/v1/topology", json=bad, headers=admin), 422, "validation_error")
    pointers = {e["pointer"] for e in body["errors"]}
    assert {
        "/providers/0/children/0/children/0/inventories/VCPU/reserved",
        "/links/0/bandwidth_gbps",
        "/facility_ports/0/vlans",
    } <= pointers
    assert state(db) == before

    problem(client.post("/v1/topology", json={"version": 2}, headers=admin), 422, "validation_error")
    problem(
        client.post("/v1/topology", json={"providers": [], "extra": 1}, headers=admin),
        422,
        "validation_error",
    )
    assert state(db) == before


def test_custom_classes_and_traits_declared_in_document(client: TestClient, admin: H, user: H) -> None:
    doc = {
        "resource_classes": [{"name": "CUSTOM_SMARTNIC", "description": "DPU"}],
        "traits": ["CUSTOM_RDMA"],
        "providers": [
            {
                "name": "S",
                "kind": "site",
                "traits": ["CUSTOM_RDMA"],
                "inventories": {"CUSTOM_SMARTNIC": {"total": 4, "reserved": 1}, "GPU_A40": 2},
            }
        ],
    }
    report = imported(client, admin, doc)
    assert report["created"] == 1
    assert client.get("/v1/resource-classes/CUSTOM_SMARTNIC", headers=user).json()["description"] == "DPU"
    assert client.get("/v1/traits/CUSTOM_RDMA", headers=user).json()["custom"] is True
    exported = client.get("/v1/topology", headers=user).json()
    assert exported["resource_classes"] == [{"name": "CUSTOM_SMARTNIC", "description": "DPU"}]
    assert exported["traits"] == ["CUSTOM_RDMA"]
    assert exported["providers"][0]["inventories"]["CUSTOM_SMARTNIC"]["reserved"] == 1
    report = imported(client, admin, exported)
    assert (report["created"], report["updated"], report["unchanged"]) == (0, 0, 1)
    # a changed description alone is applied
    exported["resource_classes"][0]["description"] = "BlueField DPU"
    imported(client, admin, exported)
    assert client.get("/v1/resource-classes/CUSTOM_SMARTNIC", headers=user).json()["description"] == (
        "BlueField DPU"
    )


def test_updates_and_prune(client: TestClient, operator: H, user: H, db: Database, demo: Any) -> None:
    imported(client, operator, demo)
    doc = copy.deepcopy(demo)
    region = doc["providers"][0]
    site = region["children"][0]
    removed_hosts = [h["name"] for h in site["children"][1:]]
    site["children"] = site["children"][:1]
    site["children"][0]["inventories"]["VCPU"] = 64  # an update
    removed_link = doc["links"].pop()["name"]
    port = doc["facility_ports"].pop()
    removed_port = f"{port['site']}/{port['name']}"
    removed_devices = sum(
        len(n.children) for n in fabric_like_topology().providers[0].children[0].children[1:]
    )

    before = state(db)
    report = imported(client, operator, doc)  # without prune nothing is deleted
    assert (report["created"], report["updated"], report["deleted"]) == (0, 1, 0)
    after = state(db)
    assert after["providers"][site["children"][0]["name"]] == 1
    assert after["calendar"] == before["calendar"] + 1
    assert {k: v for k, v in after["providers"].items() if k != site["children"][0]["name"]} == {
        k: v for k, v in before["providers"].items() if k != site["children"][0]["name"]
    }

    report = imported(client, operator, doc, prune=True)
    assert report["deleted"] == len(removed_hosts) + removed_devices + 2
    assert (report["created"], report["updated"]) == (0, 0)
    names = set(state(db)["providers"])
    assert not names & {*removed_hosts, removed_link, removed_port}
    assert site["name"] in names
    problem(
        client.post("/v1/topology", json=doc, params={"prune": "maybe"}, headers=operator),
        422,
        "validation_error",
    )
    problem(client.post("/v1/topology", json=doc, headers=user), 403, "forbidden")

    # pruning everything leaves an empty inventory
    report = imported(client, operator, {}, prune=True)
    assert report["deleted"] == len(names)
    assert state(db)["providers"] == {}
    assert client.get("/v1/topology", headers=user).json() == {
        "version": 1,
        "resource_classes": [],
        "traits": [],
        "providers": [],
        "links": [],
        "facility_ports": [],
    }


def test_import_respects_bookings_all_or_nothing(
    client: TestClient, admin: H, db: Database, demo: Any
) -> None:
    imported(client, admin, demo)
    host_name = demo["providers"][0]["children"][0]["children"][0]["name"]
    now = int(time.time())
    with db.session() as s, s.begin():
        pid = s.scalar(select(ProviderRow.id).where(ProviderRow.name == host_name))
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
                provider_id=pid, resource_class="VCPU", amount=100, start_s=now + 60, end_s=now + 600
            )
        ]
        s.add(lease)
    doc = copy.deepcopy(demo)
    doc["providers"][0]["children"][1]["location"] = {"lat": 1.0, "lon": 2.0}  # an update before the clash
    doc["providers"][0]["children"][0]["children"][0]["inventories"]["VCPU"] = 64
    before = state(db)
    r = client.post("/v1/topology", json=doc, headers=admin)
    body = problem(r, 409, "in_use")
    assert body["errors"][0]["pointer"] == "/providers/0/children/0/children/0/inventories/VCPU"
    assert state(db) == before
    # pruning the booked host is refused as well
    doc = copy.deepcopy(demo)
    doc["providers"][0]["children"][0]["children"] = []
    problem(client.post("/v1/topology", json=doc, params={"prune": True}, headers=admin), 409, "in_use")
    assert state(db) == before
