"""/v1/providers: the provider tree, inventories, traits, aggregates, bad inputs and capacity safety."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from slotbroker.store.db import Database
from slotbroker.store.models import (
    AllocationRow,
    CalendarStateRow,
    ConsumerRow,
    InventoryRow,
    ProviderAggregateRow,
    ProviderRow,
    ProviderTraitRow,
    ResourceClassRow,
    TraitRow,
)

H = dict[str, str]


def create(client: TestClient, headers: H, **body: Any) -> dict[str, Any]:
    r = client.post("/v1/providers", json=body, headers=headers)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/v1/providers/{r.json()['uuid']}"
    return dict(r.json())


def tree(client: TestClient, headers: H) -> dict[str, dict[str, Any]]:
    region = create(client, headers, name="us-east", kind="region")
    site = create(client, headers, name="NEWY", kind="site", parent_uuid=region["uuid"])
    host = create(
        client,
        headers,
        name="newy-w1",
        kind="host",
        parent_uuid=site["uuid"],
        inventories={"VCPU": 64, "MEMORY_MB": {"total": 1024, "reserved": 24}},
        traits=["HW_CPU_X86_AVX2"],
        aggregates=["fabric-east"],
    )
    device = create(
        client,
        headers,
        name="newy-w1-gpu0",
        kind="device",
        parent_uuid=host["uuid"],
        inventories={"GPU_A30": 1},
    )
    return {"region": region, "site": site, "host": host, "device": device}


def problem(r: Any, status: int, code: str, *pointers: str) -> dict[str, Any]:
    """Assert ``r`` is an RFC 9457 problem with this status, code and (at least) these pointers."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body = dict(r.json())
    assert body["status"] == status
    assert body["code"] == code, body
    got = {e["pointer"] for e in body.get("errors", [])}
    for p in pointers:
        assert p in got, (p, body)
    return body


def snapshot(db: Database) -> tuple[int, ...]:
    """Row counts of everything an inventory write touches, and the calendar generation."""
    with db.session(readonly=True) as s:
        counts = tuple(
            int(s.scalar(select(func.count()).select_from(t)) or 0)
            for t in (
                ProviderRow,
                InventoryRow,
                ProviderTraitRow,
                ProviderAggregateRow,
                ResourceClassRow,
                TraitRow,
            )
        )
        generation = int(s.scalar(select(func.sum(CalendarStateRow.generation))) or 0)
        gens = tuple(s.scalars(select(ProviderRow.generation).order_by(ProviderRow.id)))
    return (*counts, generation, *gens)


# -- the tree ---------------------------------------------------------------------------------------------


def test_tree_crud(client: TestClient, admin: H, operator: H, user: H) -> None:
    t = tree(client, operator)
    host = t["host"]
    assert host["parent_uuid"] == t["site"]["uuid"]
    assert host["generation"] == 0
    assert host["traits"] == ["HW_CPU_X86_AVX2"]
    assert host["aggregates"] == ["fabric-east"]
    assert host["inventories"]["VCPU"] == {
        "total": 64,
        "reserved": 0,
        "min_unit": 1,
        "max_unit": 64,
        "step_size": 1,
        "allocation_ratio": 1.0,
        "capacity": 64,
    }
    assert host["inventories"]["MEMORY_MB"]["capacity"] == 1000
    assert host["created_at"].endswith(("+00:00", "Z"))

    got = client.get(f"/v1/providers/{host['uuid']}", headers=user)
    assert got.status_code == 200
    assert got.json() == host

    # rename, with the generation read
    r = client.put(f"/v1/providers/{host['uuid']}", json={"generation": 0, "name": "newy-w01"}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "newy-w01"
    assert r.json()["generation"] == 1
    problem(
        client.put(f"/v1/providers/{host['uuid']}", json={"generation": 0, "name": "x"}, headers=admin),
        409,
        "concurrent_update",
        "/generation",
    )
    problem(
        client.put(f"/v1/providers/{host['uuid']}", json={"generation": 1, "name": "us-east"}, headers=admin),
        409,
        "already_exists",
        "/name",
    )
    # relocate
    r = client.put(
        f"/v1/providers/{t['site']['uuid']}",
        json={"generation": 0, "location": {"lat": 40.7, "lon": -74.0}},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    assert r.json()["location"] == {"lat": 40.7, "lon": -74.0}
    # moving a host under a region is refused
    problem(
        client.put(
            f"/v1/providers/{host['uuid']}",
            json={"generation": 1, "parent_uuid": t["region"]["uuid"]},
            headers=admin,
        ),
        422,
        "validation_error",
        "/parent_uuid",
    )

    # children first
    for parent in ("region", "site", "host"):
        problem(client.delete(f"/v1/providers/{t[parent]['uuid']}", headers=admin), 409, "in_use")
    for name in ("device", "host", "site", "region"):
        r = client.delete(f"/v1/providers/{t[name]['uuid']}", headers=admin)
        assert r.status_code == 204, r.text
        problem(client.get(f"/v1/providers/{t[name]['uuid']}", headers=admin), 404, "not_found")
    assert client.get("/v1/providers", headers=admin).json() == {"items": [], "next_cursor": None}


def test_create_with_uuid_and_duplicates(client: TestClient, admin: H) -> None:
    fixed = str(uuid.uuid4())
    region = create(client, admin, name="r1", kind="region", uuid=fixed)
    assert region["uuid"] == fixed
    problem(
        client.post("/v1/providers", json={"name": "r1", "kind": "region"}, headers=admin),
        409,
        "already_exists",
        "/name",
    )
    problem(
        client.post("/v1/providers", json={"name": "r2", "kind": "region", "uuid": fixed}, headers=admin),
        409,
        "already_exists",
        "/uuid",
    )


def test_kind_and_parent_rules(client: TestClient, admin: H, db: Database) -> None:
    region = create(client, admin, name="r", kind="region")
    site = create(client, admin, name="s", kind="site")  # a site may be a root
    before = snapshot(db)
    problem(
        client.post("/v1/providers", json={"name": "h", "kind": "host"}, headers=admin),
        422,
        "validation_error",
        "/parent_uuid",
    )
    problem(
        client.post(
            "/v1/providers", json={"name": "h", "kind": "host", "parent_uuid": region["uuid"]}, headers=admin
        ),
        422,
        "validation_error",
        "/parent_uuid",
    )
    problem(
        client.post(
            "/v1/providers", json={"name": "r2", "kind": "region", "parent_uuid": site["uuid"]}, headers=admin
        ),
        422,
        "validation_error",
        "/parent_uuid",
    )
    problem(
        client.post(
            "/v1/providers",
            json={"name": "h", "kind": "host", "parent_uuid": str(uuid.uuid4())},
            headers=admin,
        ),
        422,
        "validation_error",
        "/parent_uuid",
    )
    for kind in ("link", "facility_port"):
        problem(
            client.post(
                "/v1/providers", json={"name": "x", "kind": kind, "parent_uuid": site["uuid"]}, headers=admin
            ),
            422,
            "validation_error",
            "/kind",
        )
    problem(
        client.post("/v1/providers", json={"name": "x", "kind": "rack"}, headers=admin),
        422,
        "validation_error",
        "/kind",
    )
    assert snapshot(db) == before


def test_filters(client: TestClient, admin: H, user: H) -> None:
    t = tree(client, admin)
    other = create(client, admin, name="STAR", kind="site", aggregates=["fabric-core"])
    create(client, admin, name="star-w1", kind="host", parent_uuid=other["uuid"], traits=["HW_GPU_CUDA"])

    def names(**params: Any) -> list[str]:
        r = client.get("/v1/providers", params=params, headers=user)
        assert r.status_code == 200, r.text
        return [p["name"] for p in r.json()["items"]]

    assert names() == ["NEWY", "STAR", "newy-w1", "newy-w1-gpu0", "star-w1", "us-east"]
    assert names(kind="host") == ["newy-w1", "star-w1"]
    assert names(kind=["site", "region"]) == ["NEWY", "STAR", "us-east"]
    assert names(parent=t["site"]["uuid"]) == ["newy-w1"]
    assert names(parent=t["region"]["uuid"]) == ["NEWY"]
    assert names(trait="HW_GPU_CUDA") == ["star-w1"]
    assert names(trait=["HW_GPU_CUDA", "HW_CPU_X86_AVX2"]) == []
    assert names(member_of="fabric-core") == ["STAR"]
    assert names(member_of=["fabric-core", "fabric-east"]) == ["STAR", "newy-w1"]
    assert names(name="NEWY") == ["NEWY"]
    assert names(name="nope") == []
    problem(
        client.get("/v1/providers", params={"kind": "rack"}, headers=user),
        422,
        "validation_error",
        "#/query/kind/0",
    )
    problem(
        client.get("/v1/providers", params={"limit": 0}, headers=user),
        422,
        "validation_error",
        "#/query/limit",
    )
    problem(
        client.get("/v1/providers", params={"parent": str(uuid.uuid4())}, headers=user),
        422,
        "validation_error",
    )


def test_cursor_paging_is_stable(client: TestClient, admin: H) -> None:
    for i in range(0, 14, 2):
        create(client, admin, name=f"site-{i:02d}", kind="site")
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        body = client.get("/v1/providers", params=params, headers=admin).json()
        seen += [p["name"] for p in body["items"]]
        pages += 1
        if pages == 1:
            # inserts behind and ahead of the cursor while paging: no duplicates, no skips of later rows
            create(client, admin, name="site-01", kind="site")
            create(client, admin, name="site-13", kind="site")
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen)
    assert len(seen) == len(set(seen))
    assert seen == [f"site-{i:02d}" for i in (0, 2, 4, 6, 8, 10, 12, 13)]
    assert pages == 3


# -- inventories, traits, aggregates -------------------------------------------------------------------


def test_inventories_with_generation(client: TestClient, admin: H, db: Database) -> None:
    host = tree(client, admin)["host"]
    url = f"/v1/providers/{host['uuid']}/inventories"
    r = client.get(url, headers=admin)
    assert r.status_code == 200
    assert r.json()["generation"] == 0
    assert set(r.json()["inventories"]) == {"VCPU", "MEMORY_MB"}

    body = {"generation": 0, "inventories": {"VCPU": {"total": 32, "allocation_ratio": 4.0}, "DISK_GB": 100}}
    r = client.put(url, json=body, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["generation"] == 1
    assert set(r.json()["inventories"]) == {"VCPU", "DISK_GB"}
    assert r.json()["inventories"]["VCPU"]["capacity"] == 128

    before = snapshot(db)
    problem(client.put(url, json=body, headers=admin), 409, "concurrent_update", "/generation")
    assert snapshot(db) == before

    # the same inventories again: nothing changes, not even the generation
    same = client.put(url, json={**body, "generation": 1}, headers=admin)
    assert same.status_code == 200
    assert same.json()["generation"] == 1

    r = client.put(f"{url}/GPU_T4", json={"generation": 1, "total": 2}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["generation"] == 2
    assert r.json()["inventories"]["GPU_T4"]["max_unit"] == 2
    problem(
        client.put(f"{url}/GPU_T4", json={"generation": 1, "total": 3}, headers=admin),
        409,
        "concurrent_update",
        "/generation",
    )
    refused = problem(
        client.put(f"{url}/VCPU", json={"generation": 2, "total": 4, "reserved": 5}, headers=admin),
        422,
        "validation_error",
        "/reserved",
    )
    assert refused["detail"].endswith("reserved (5) exceeds total (4)")
    problem(
        client.put(
            f"{url}/VCPU", json={"generation": 2, "total": 4, "min_unit": 3, "max_unit": 2}, headers=admin
        ),
        422,
        "validation_error",
        "/min_unit",
    )
    problem(
        client.put(f"{url}/VCPU", json={"generation": 2, "total": -4}, headers=admin),
        422,
        "validation_error",
        "/total",
    )
    problem(
        client.put(f"{url}/BOGUS", json={"generation": 2, "total": 4}, headers=admin),
        422,
        "validation_error",
        "/inventories/BOGUS",
    )

    r = client.delete(f"{url}/DISK_GB", params={"generation": 2}, headers=admin)
    assert r.status_code == 200, r.text
    assert set(r.json()["inventories"]) == {"VCPU", "GPU_T4"}
    assert r.json()["generation"] == 3
    problem(client.delete(f"{url}/DISK_GB", params={"generation": 3}, headers=admin), 404, "not_found")
    problem(
        client.delete(f"{url}/VCPU", params={"generation": 2}, headers=admin),
        409,
        "concurrent_update",
        "/generation",
    )
    problem(client.delete(f"{url}/VCPU", headers=admin), 422, "validation_error", "#/query/generation")
    # the device class was registered on first use
    r = client.get("/v1/resource-classes/GPU_T4", headers=admin)
    assert r.json()["kind"] == "device"


def test_traits_and_aggregates_with_generation(client: TestClient, admin: H, user: H) -> None:
    host = tree(client, admin)["host"]
    traits = f"/v1/providers/{host['uuid']}/traits"
    aggs = f"/v1/providers/{host['uuid']}/aggregates"
    assert client.get(traits, headers=user).json() == {
        "provider_uuid": host["uuid"],
        "generation": 0,
        "names": ["HW_CPU_X86_AVX2"],
    }
    r = client.put(
        traits, json={"generation": 0, "names": ["HW_NIC_SRIOV", "COMPUTE_VM", "COMPUTE_VM"]}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert r.json()["names"] == ["COMPUTE_VM", "HW_NIC_SRIOV"]
    assert r.json()["generation"] == 1
    problem(
        client.put(traits, json={"generation": 0, "names": []}, headers=admin),
        409,
        "concurrent_update",
        "/generation",
    )
    problem(
        client.put(traits, json={"generation": 1, "names": ["COMPUTE_VM", "CUSTOM_NOPE"]}, headers=admin),
        422,
        "validation_error",
        "/names/1",
    )
    problem(
        client.put(traits, json={"generation": 1, "names": ["lower"]}, headers=admin),
        422,
        "validation_error",
        "/names/0",
    )
    assert client.get(traits, headers=user).json()["names"] == ["COMPUTE_VM", "HW_NIC_SRIOV"]

    r = client.put(aggs, json={"generation": 1, "names": ["b-agg", "a-agg"]}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json() == {"provider_uuid": host["uuid"], "generation": 2, "names": ["a-agg", "b-agg"]}
    problem(
        client.put(aggs, json={"generation": 1, "names": []}, headers=admin),
        409,
        "concurrent_update",
        "/generation",
    )
    problem(
        client.put(aggs, json={"generation": 2, "names": ["ok", "not ok"]}, headers=admin),
        422,
        "validation_error",
        "/names/1",
    )
    assert client.get(aggs, headers=user).json()["names"] == ["a-agg", "b-agg"]
    problem(client.put(traits, json={"generation": 2, "names": []}, headers=user), 403, "forbidden")


# -- bad inputs: a 4xx problem naming the field, never a 500, never a partial write ----------------------

BAD_BODIES: list[tuple[str, dict[str, Any], int, str, str | None]] = [
    (
        "unknown class",
        {"inventories": {"VCPU": 4, "FLUX_CAPACITOR": 1}},
        422,
        "validation_error",
        "/inventories/FLUX_CAPACITOR",
    ),
    ("bad class name", {"inventories": {"vcpu": 4}}, 422, "validation_error", "/inventories/vcpu"),
    (
        "negative total",
        {"inventories": {"VCPU": {"total": -4}}},
        422,
        "validation_error",
        "/inventories/VCPU/total",
    ),
    (
        "zero total shorthand",
        {"inventories": {"VCPU": 0}},
        422,
        "validation_error",
        "/inventories/VCPU/total",
    ),
    (
        "negative reserved",
        {"inventories": {"VCPU": {"total": 4, "reserved": -1}}},
        422,
        "validation_error",
        "/inventories/VCPU/reserved",
    ),
    (
        "reserved > total",
        {"inventories": {"VCPU": {"total": 4, "reserved": 5}}},
        422,
        "validation_error",
        "/inventories/VCPU/reserved",
    ),
    (
        "min_unit > max_unit",
        {"inventories": {"VCPU": {"total": 8, "min_unit": 4, "max_unit": 2}}},
        422,
        "validation_error",
        "/inventories/VCPU/min_unit",
    ),
    (
        "min_unit > total",
        {"inventories": {"VCPU": {"total": 2, "min_unit": 4}}},
        422,
        "validation_error",
        "/inventories/VCPU/min_unit",
    ),
    (
        "step_size > max_unit",
        {"inventories": {"VCPU": {"total": 8, "step_size": 16}}},
        422,
        "validation_error",
        "/inventories/VCPU/step_size",
    ),
    (
        "zero ratio",
        {"inventories": {"VCPU": {"total": 8, "allocation_ratio": 0}}},
        422,
        "validation_error",
        "/inventories/VCPU/allocation_ratio",
    ),
    (
        "unknown field",
        {"inventories": {"VCPU": {"total": 8, "totl": 9}}},
        422,
        "validation_error",
        "/inventories/VCPU/totl",
    ),
    (
        "unregistered custom class",
        {"inventories": {"CUSTOM_WIDGET": 1}},
        422,
        "validation_error",
        "/inventories/CUSTOM_WIDGET",
    ),
    (
        "unregistered custom trait",
        {"traits": ["COMPUTE_VM", "CUSTOM_SHINY"]},
        422,
        "validation_error",
        "/traits/1",
    ),
    ("bad trait name", {"traits": ["shiny"]}, 422, "validation_error", "/traits/0"),
    ("bad aggregate", {"aggregates": ["has space"]}, 422, "validation_error", "/aggregates/0"),
    ("bad name", {"name": "has space"}, 422, "validation_error", "/name"),
    ("latitude", {"location": {"lat": 91, "lon": 0}}, 422, "validation_error", "/location/lat"),
    ("total too big", {"inventories": {"VCPU": 2**60}}, 422, "validation_error", "/inventories/VCPU/total"),
]


@pytest.mark.parametrize(
    ("extra", "status", "code", "pointer"),
    [case[1:] for case in BAD_BODIES],
    ids=[case[0] for case in BAD_BODIES],
)
def test_bad_provider_bodies(
    client: TestClient,
    admin: H,
    db: Database,
    extra: dict[str, Any],
    status: int,
    code: str,
    pointer: str | None,
) -> None:
    site = create(client, admin, name="s", kind="site")
    before = snapshot(db)
    body = {"name": "h", "kind": "host", "parent_uuid": site["uuid"], **extra}
    problem(
        client.post("/v1/providers", json=body, headers=admin), status, code, *([pointer] if pointer else [])
    )
    assert snapshot(db) == before
    # the same mistakes through PUT .../inventories leave the inventories alone
    if "inventories" in extra:
        host = create(client, admin, name="h", kind="host", parent_uuid=site["uuid"], inventories={"VCPU": 8})
        before = snapshot(db)
        r = client.put(
            f"/v1/providers/{host['uuid']}/inventories",
            json={"generation": 0, "inventories": extra["inventories"]},
            headers=admin,
        )
        problem(r, status, code, *([pointer] if pointer else []))
        assert snapshot(db) == before


def raw(client: TestClient, headers: H, content: bytes, ctype: str, url: str = "/v1/providers") -> Any:
    return client.post(url, content=content, headers={**headers, "Content-Type": ctype})


def test_bad_requests(client: TestClient, admin: H, user: H, db: Database) -> None:
    before = snapshot(db)
    body = problem(raw(client, admin, b'{"name": "x", "kind": ', "application/json"), 400, "malformed_body")
    assert "JSON" in body["detail"]
    problem(raw(client, admin, b"name: [x\nkind: region\n", "application/yaml"), 400, "malformed_body")
    aliases = b"a: &a [1, 2]\nb: *a\nname: x\nkind: region\n"
    body = problem(raw(client, admin, aliases, "application/yaml"), 400, "malformed_body")
    assert "alias" in body["detail"]
    problem(raw(client, admin, b"<provider/>", "application/xml"), 415, "unsupported_media_type")
    problem(raw(client, admin, b"name=x", "application/x-www-form-urlencoded"), 415, "unsupported_media_type")
    big = b'{"name": "x", "kind": "region", "pad": "' + b"x" * (1 << 20) + b'"}'
    problem(raw(client, admin, big, "application/json"), 413, "payload_too_large")
    problem(raw(client, admin, b"[1, 2]", "application/json"), 422, "validation_error")
    problem(raw(client, admin, b"- 1\n- 2\n", "application/yaml"), 422, "validation_error")

    r = client.post("/v1/providers", json={"name": "x", "kind": "region"})
    problem(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"
    r = client.get("/v1/providers", headers={"Authorization": "Bearer sb_wrong"})
    problem(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"
    problem(client.get("/v1/providers", headers={"Authorization": "Basic Zm9vOmJhcg=="}), 401, "unauthorized")
    problem(
        client.post("/v1/providers", json={"name": "x", "kind": "region"}, headers=user), 403, "forbidden"
    )
    missing = str(uuid.uuid4())
    for path in ("", "/inventories", "/traits", "/aggregates"):
        problem(client.get(f"/v1/providers/{missing}{path}", headers=user), 404, "not_found")
    problem(
        client.put(
            f"/v1/providers/{missing}/inventories", json={"generation": 0, "inventories": {}}, headers=admin
        ),
        404,
        "not_found",
    )
    problem(client.delete(f"/v1/providers/{missing}", headers=admin), 404, "not_found")
    problem(client.get("/v1/providers/not-a-uuid", headers=user), 422, "validation_error", "#/path/uuid")
    assert snapshot(db) == before

    # YAML in, and it really works
    r = raw(client, admin, b"name: yaml-region\nkind: region\n", "application/yaml")
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "yaml-region"


# -- capacity safety: never shrink below what is booked ------------------------------------------------


def book(db: Database, provider_uuid: str, resource_class: str, *spans: tuple[int, int, int]) -> None:
    """Insert a lease with one allocation per (amount, start offset, end offset) from now."""
    now = int(time.time())
    with db.session() as s, s.begin():
        provider_id = s.scalar(select(ProviderRow.id).where(ProviderRow.uuid == provider_uuid))
        assert provider_id is not None
        lease = ConsumerRow(
            uuid=str(uuid.uuid4()),
            kind="lease",
            project="demo",
            status="active",
            start_s=now + min(a for _, a, _ in spans),
            end_s=now + max(b for _, _, b in spans),
        )
        lease.allocations = [
            AllocationRow(
                provider_id=provider_id,
                resource_class=resource_class,
                amount=amount,
                start_s=now + start,
                end_s=now + end,
            )
            for amount, start, end in spans
        ]
        s.add(lease)


def test_inventory_changes_respect_bookings(client: TestClient, admin: H, db: Database) -> None:
    site = create(client, admin, name="s", kind="site")
    host = create(
        client,
        admin,
        name="h",
        kind="host",
        parent_uuid=site["uuid"],
        inventories={"VCPU": 64, "DISK_GB": 10},
    )
    # peak 10 + 6 = 16 in [2h, 3h); 12 alone later; a finished booking of 60 does not count
    book(db, host["uuid"], "VCPU", (10, 3600, 3 * 3600), (6, 2 * 3600, 4 * 3600), (12, 5 * 3600, 6 * 3600))
    book(db, host["uuid"], "VCPU", (60, -7200, -3600))
    url = f"/v1/providers/{host['uuid']}/inventories"

    before = snapshot(db)
    problem(
        client.put(url, json={"generation": 0, "inventories": {"VCPU": 15, "DISK_GB": 10}}, headers=admin),
        409,
        "in_use",
        "/inventories/VCPU",
    )
    problem(
        client.put(f"{url}/VCPU", json={"generation": 0, "total": 15}, headers=admin),
        409,
        "in_use",
        "/inventories/VCPU",
    )
    # over-commit counts: (20 - 4) * 0.9 = 14.4 -> 14 < 16
    problem(
        client.put(
            f"{url}/VCPU",
            json={"generation": 0, "total": 20, "reserved": 4, "allocation_ratio": 0.9},
            headers=admin,
        ),
        409,
        "in_use",
        "/inventories/VCPU",
    )
    problem(
        client.put(url, json={"generation": 0, "inventories": {"DISK_GB": 10}}, headers=admin),
        409,
        "in_use",
        "/inventories/VCPU",
    )
    problem(client.delete(f"{url}/VCPU", params={"generation": 0}, headers=admin), 409, "in_use")
    problem(client.delete(f"/v1/providers/{host['uuid']}", headers=admin), 409, "in_use")
    assert snapshot(db) == before

    # exactly the peak is fine; so is removing an unbooked class
    r = client.put(url, json={"generation": 0, "inventories": {"VCPU": 16}}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["inventories"]["VCPU"]["capacity"] == 16
    assert r.json()["generation"] == 1
    # (32 - 0) * 0.5 = 16 as well
    r = client.put(f"{url}/VCPU", json={"generation": 1, "total": 32, "allocation_ratio": 0.5}, headers=admin)
    assert r.status_code == 200, r.text
