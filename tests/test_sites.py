"""GET /v1/sites (issue 14): capacity per class per site, free now, and hosts/links/ports counts."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

HOUR = 3600
TOPOLOGY = {
    "providers": [
        {
            "name": "ALPHA",
            "kind": "site",
            "location": {"lat": 40.0, "lon": -88.0},
            "children": [
                {"name": "al-1", "kind": "host", "inventories": {"VCPU": 32, "GPU_A30": 2}},
                {"name": "al-2", "kind": "host", "inventories": {"VCPU": 16}},
            ],
        },
        {
            "name": "BETA",
            "kind": "site",
            "children": [{"name": "be-1", "kind": "host", "inventories": {"VCPU": 8}}],
        },
    ],
    "links": [{"name": "alpha-beta", "endpoints": ["ALPHA", "BETA"], "bandwidth_gbps": 100}],
    "facility_ports": [{"name": "p1", "site": "BETA", "vlans": "100-200", "bandwidth_gbps": 10}],
}


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def by_class(site: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["resource_class"]: c for c in site["classes"]}


def test_sites_summarise_capacity_and_what_is_free_now(
    client: TestClient, admin: dict[str, str], user: dict[str, str]
) -> None:
    r = client.post("/v1/topology", json=TOPOLOGY, headers=admin)
    assert r.status_code == 200, r.text
    now = int(time.time())
    host = client.get("/v1/providers?name=al-1", headers=user).json()["items"][0]["uuid"]
    body = {
        "start": iso(now - 60),
        "end": iso(now + HOUR),
        "items": [
            {"provider_uuid": host, "resource_class": "VCPU", "amount": 20},
            {"provider_uuid": host, "resource_class": "GPU_A30", "amount": 1},
        ],
    }
    assert client.post("/v1/leases", json=body, headers=user).status_code == 201
    later = {**body, "start": iso(now + 2 * HOUR), "end": iso(now + 3 * HOUR)}
    later["items"] = [{"provider_uuid": host, "resource_class": "VCPU", "amount": 12}]
    assert client.post("/v1/leases", json=later, headers=user).status_code == 201  # not now: not counted

    got = client.get("/v1/sites", headers=user)
    assert got.status_code == 200, got.text
    sites = {s["name"]: s for s in got.json()["items"]}
    assert list(sites) == ["ALPHA", "BETA"]
    alpha, beta = sites["ALPHA"], sites["BETA"]
    assert (alpha["hosts"], alpha["links"], alpha["ports"]) == (2, 1, 0)
    assert (alpha["lat"], alpha["lon"]) == (40.0, -88.0)
    assert by_class(alpha)["VCPU"] == {
        "resource_class": "VCPU",
        "capacity": 48,
        "free": 28,
        "largest_free": 16,
        "hosts": 2,
    }
    assert by_class(alpha)["GPU_A30"] == {
        "resource_class": "GPU_A30",
        "capacity": 2,
        "free": 1,
        "largest_free": 1,
        "hosts": 1,
    }
    assert (beta["hosts"], beta["links"], beta["ports"]) == (1, 1, 1)
    assert by_class(beta) == {
        "VCPU": {"resource_class": "VCPU", "capacity": 8, "free": 8, "largest_free": 8, "hosts": 1}
    }
    assert client.get("/v1/sites").status_code == 401
