"""GET /v1/allocation-candidates: Placement syntax and shape, time-bounded free capacity compared with a
brute force over random worlds, trait and aggregate filters, claimable ids that never overbook."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from slotbroker.domain.inventory import Inventory
from slotbroker.domain.providers import ProviderKind
from slotbroker.services.find_slot.candidates import parse_member_of, parse_required, parse_resources
from slotbroker.services.inventory.service import InventoryService
from slotbroker.store.db import Database
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire import providers as cmd

HOUR = 3600
TRAITS = ["HW_CPU_X86_AVX2", "STORAGE_DISK_SSD", "HW_GPU_CUDA"]
AGGS = ["agg1", "agg2", "agg3"]


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


class World:
    """Hosts with random inventories, traits and aggregates, plus the bookings made (for the brute force)."""

    def __init__(self, app: FastAPI, client: TestClient, headers: dict[str, str], seed: int) -> None:
        self.client, self.headers = client, headers
        self.db: Database = app.state.services.db
        rng = self.rng = random.Random(seed)
        inv = InventoryService(self.db)
        site = inv.create_provider(cmd.CreateProvider(name=f"S{seed}", kind=ProviderKind.SITE))
        self.hosts: dict[str, dict[str, Any]] = {}
        for i in range(10):
            invs = {"VCPU": Inventory(total=rng.choice([4, 8, 16])), "MEMORY_MB": Inventory(total=16384)}
            if i % 3 == 0:
                invs["GPU_A30"] = Inventory(total=2)
            traits = sorted(rng.sample(TRAITS, rng.randint(0, 2)))
            aggs = sorted(rng.sample(AGGS, rng.randint(0, 2)))
            view = inv.create_provider(
                cmd.CreateProvider(
                    name=f"s{seed}h{i}",
                    kind=ProviderKind.HOST,
                    parent_uuid=site.uuid,  # type: ignore[arg-type,unused-ignore]
                    inventories=invs,
                    traits=traits,
                    aggregates=aggs,
                )
            )
            caps = {rc: v.total for rc, v in invs.items()}
            self.hosts[view.uuid] = {
                "caps": caps,
                "traits": set(traits),
                "aggs": set(aggs),
                "name": view.name,
            }
        now = int(time.time())
        self.t0 = now - now % HOUR + HOUR
        self.bookings: list[tuple[str, str, int, int, int]] = []  # host, class, amount, start, end

    def book(self, host: str, rc: str, amount: int, start: int, end: int) -> bool:
        r = self.client.post(
            "/v1/claims",
            json={
                "items": [{"provider_uuid": host, "resource_class": rc, "amount": amount}],
                "start": iso(start),
                "end": iso(end),
            },
            headers=self.headers,
        )
        assert r.status_code in (201, 409, 422), r.text  # 422: above max_unit
        ok = bool(r.status_code == 201)
        if ok:
            self.bookings.append((host, rc, amount, start, end))
        return ok

    def random_bookings(self, n: int) -> None:
        hosts = list(self.hosts)
        for _ in range(n):
            h = self.rng.choice(hosts)
            rc = self.rng.choice(sorted(self.hosts[h]["caps"]))
            s = self.t0 + self.rng.randrange(0, 8 * HOUR, 600)
            self.book(h, rc, self.rng.randint(1, 4), s, s + self.rng.randrange(600, 3 * HOUR, 600))

    def peak(self, host: str, rc: str, start: int, end: int) -> int:
        points = {start} | {b[3] for b in self.bookings if start < b[3] < end}
        return max(
            sum(b[2] for b in self.bookings if b[0] == host and b[1] == rc and b[3] <= t < b[4])
            for t in points
        )

    def brute(
        self,
        res: dict[str, int],
        required: set[str],
        forbidden: set[str],
        member_any: set[str] | None,
        start: int,
        end: int,
    ) -> set[str]:
        out = set()
        for h, facts in self.hosts.items():
            if not required <= facts["traits"] or forbidden & facts["traits"]:
                continue
            if member_any is not None and not member_any & facts["aggs"]:
                continue
            if all(
                rc in facts["caps"] and facts["caps"][rc] - self.peak(h, rc, start, end) >= amt
                for rc, amt in res.items()
            ):
                out.add(h)
        return out

    def get(self, **params: Any) -> Any:
        return self.client.get("/v1/allocation-candidates", params=params, headers=self.headers)


@pytest.fixture
def world(app: FastAPI, client: TestClient, admin: dict[str, str]) -> World:
    return World(app, client, admin, seed=7)


def audit_clean(db: Database) -> None:
    with UnitOfWork(db, readonly=True) as uow:
        assert uow.allocations.overbooked() == []


def test_candidates_match_a_brute_force(world: World) -> None:
    world.random_bookings(40)
    rng = random.Random(3)
    for _ in range(25):
        res = {"VCPU": rng.randint(1, 12)}
        if rng.random() < 0.5:
            res["MEMORY_MB"] = rng.choice([1024, 8192, 16384])
        if rng.random() < 0.3:
            res["GPU_A30"] = rng.randint(1, 2)
        required = set(rng.sample(TRAITS, rng.randint(0, 1)))
        forbidden = set(rng.sample([t for t in TRAITS if t not in required], rng.randint(0, 1)))
        member = set(rng.sample(AGGS, 2)) if rng.random() < 0.4 else None
        s = world.t0 + rng.randrange(0, 8 * HOUR, 300)
        e = s + rng.randrange(300, 4 * HOUR, 300)
        params: dict[str, Any] = {
            "resources": ",".join(f"{k}:{v}" for k, v in res.items()),
            "start": iso(s),
            "end": iso(e),
        }
        req = [*sorted(required), *(f"!{t}" for t in sorted(forbidden))]
        if req:
            params["required"] = ",".join(req)
        if member is not None:
            params["member_of"] = "in:" + ",".join(sorted(member))
        r = world.get(**params)
        assert r.status_code == 200, r.text
        body = r.json()
        got = {next(iter(a["allocations"])) for a in body["allocation_requests"]}
        assert got == world.brute(res, required, forbidden, member, s, e), params
        for u in got:
            summary = body["provider_summaries"][u]
            assert set(summary["resources"]) == set(world.hosts[u]["caps"])
            for rc, use in summary["resources"].items():
                assert use["capacity"] == world.hosts[u]["caps"][rc]
                assert use["used"] == world.peak(u, rc, s, e)
            assert set(summary["traits"]) == world.hosts[u]["traits"]


def test_time_bounded_candidates_respect_future_bookings(world: World) -> None:
    host = next(
        h
        for h, f in world.hosts.items()
        if f["caps"]["VCPU"] == max(x["caps"]["VCPU"] for x in world.hosts.values())
    )
    cap = world.hosts[host]["caps"]["VCPU"]
    assert world.book(host, "VCPU", cap, world.t0 + 2 * HOUR, world.t0 + 3 * HOUR)

    def hosts(s: int, e: int) -> set[str]:
        r = world.get(resources="VCPU:1", start=iso(s), end=iso(e))
        assert r.status_code == 200, r.text
        return {next(iter(a["allocations"])) for a in r.json()["allocation_requests"]}

    assert host in hosts(world.t0, world.t0 + HOUR)
    assert host not in hosts(world.t0, world.t0 + 2 * HOUR + 1)
    assert host not in hosts(world.t0 + 2 * HOUR + 1800, world.t0 + 2 * HOUR + 1801)
    assert host in hosts(world.t0 + 3 * HOUR, world.t0 + 4 * HOUR)


def test_claimed_candidates_never_overbook(world: World) -> None:
    s, e = world.t0, world.t0 + HOUR
    claimed = 0
    for _ in range(60):
        r = world.get(resources="VCPU:4", limit=3, start=iso(s), end=iso(e))
        assert r.status_code == 200
        reqs = r.json()["allocation_requests"]
        assert len(reqs) <= 3
        if not reqs:
            break
        for a in reqs:  # claim all three: later ones may conflict with nothing, each fits on its own
            c = world.client.post("/v1/claims", json={"allocation_request": a["id"]}, headers=world.headers)
            assert c.status_code in (201, 409), c.text
            claimed += c.status_code == 201
    total = sum(f["caps"]["VCPU"] // 4 for f in world.hosts.values())
    assert claimed == total
    audit_clean(world.db)
    assert world.get(resources="VCPU:4", start=iso(s), end=iso(e)).json()["allocation_requests"] == []


def test_shape_and_limit(world: World) -> None:
    r = world.get(resources="VCPU:1,MEMORY_MB:1024", limit=2)
    assert r.status_code == 200
    body = r.json()
    assert len(body["allocation_requests"]) == 2
    for a in body["allocation_requests"]:
        ((u, alloc),) = a["allocations"].items()
        assert alloc == {"resources": {"VCPU": 1, "MEMORY_MB": 1024}}
        assert a["id"]
        assert u in body["provider_summaries"]
    assert set(body["provider_summaries"]) == {
        next(iter(a["allocations"])) for a in body["allocation_requests"]
    }


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({}, "resources"),
        ({"resources": "VCPU"}, "resources"),
        ({"resources": "VCPU:x"}, "resources"),
        ({"resources": "vcpu:1"}, "resources"),
        ({"resources": "CUSTOM_NOPE:1"}, "resources"),
        ({"resources": "VCPU:1,VCPU:2"}, "resources"),
        ({"resources": "VCPU:0"}, "resources"),
        ({"resources": "VCPU:1", "required": "!"}, "required"),
        ({"resources": "VCPU:1", "required": "A,!A"}, "required"),
        ({"resources": "VCPU:1", "member_of": "in:"}, "member_of"),
        ({"resources": "VCPU:1", "limit": "0"}, "limit"),
        ({"resources": "VCPU:1", "limit": "x"}, "limit"),
        ({"resources": "VCPU:1", "start": "2030-01-01T01:00:00Z", "end": "2030-01-01T00:00:00Z"}, "end"),
        ({"resources": "VCPU:1", "start": "yesterday"}, "start"),
    ],
)
def test_bad_syntax_names_the_parameter(world: World, params: dict[str, str], name: str) -> None:
    r = world.get(**params)
    assert r.status_code in (400, 422), r.text
    assert any(err["pointer"] == f"#/query/{name}" for err in r.json()["errors"]), r.json()


def test_parsers() -> None:
    assert parse_resources("VCPU:8,MEMORY_MB:32768,DISK_GB:100") == {
        "VCPU": 8,
        "MEMORY_MB": 32768,
        "DISK_GB": 100,
    }
    assert parse_required(["A,!B", "in:C,D"]) == (
        (frozenset({"A"}), frozenset({"C", "D"})),
        frozenset({"B"}),
    )
    assert parse_member_of(["in:a,b", "!in:c"]) == ((frozenset({"a", "b"}),), frozenset({"c"}))
