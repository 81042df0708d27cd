"""Allocation requests: find-slot windows carry an id that claims exactly the window (hosts, link
bandwidth on every route link, VLAN tags and port bandwidth); alternates take over when a chosen host
was taken; expired and unknown ids are refused with stable codes; release is idempotent. Both databases.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from slotbroker.domain.inventory import Inventory
from slotbroker.domain.providers import ProviderKind
from slotbroker.services.booking.allocation_request_bodies import ARBody
from slotbroker.services.booking.allocation_request_ids import IdSealer, key_source
from slotbroker.services.inventory.network import NetworkService
from slotbroker.services.inventory.service import InventoryService
from slotbroker.store.db import Database
from slotbroker.store.models import AllocationRow, Base, ConsumerRow, ProviderRow
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire import providers as cmd

HOUR = 3600
_names = itertools.count()


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


@dataclass
class World:
    client: TestClient
    headers: dict[str, str]
    app: FastAPI
    hosts: dict[str, str]  # name -> uuid
    link: str
    link_uuid: str
    port: str
    port_uuid: str
    start: int
    site_a: str
    site_b: str

    @property
    def db(self) -> Database:
        db: Database = self.app.state.services.db
        return db


def build_world(app: FastAPI, client: TestClient, admin: dict[str, str]) -> World:
    db: Database = app.state.services.db
    inv, net = InventoryService(db), NetworkService(db)
    tag = next(_names)
    s1 = inv.create_provider(cmd.CreateProvider(name=f"SA{tag}", kind=ProviderKind.SITE))
    s2 = inv.create_provider(cmd.CreateProvider(name=f"SB{tag}", kind=ProviderKind.SITE))
    hosts: dict[str, str] = {}
    for i, site in enumerate([s1, s1, s1, s1, s2]):
        name = f"h{tag}x{i}"
        view = inv.create_provider(
            cmd.CreateProvider(
                name=name,
                kind=ProviderKind.HOST,
                parent_uuid=site.uuid,  # type: ignore[arg-type,unused-ignore]
                inventories={"VCPU": Inventory(total=8), "MEMORY_MB": Inventory(total=16384)},
            )
        )
        hosts[name] = view.uuid
    link_name = f"l{tag}"
    link = net.create_link(cmd.CreateLink(name=link_name, endpoints=(s1.name, s2.name), bandwidth_gbps=10))
    port_name = f"p{tag}"
    port = net.create_port(
        cmd.CreateFacilityPort(name=port_name, site=s2.name, vlans="100-103", bandwidth_gbps=10)
    )
    now = int(time.time())
    start = now - now % HOUR + 2 * HOUR
    return World(
        client, admin, app, hosts, link_name, link.uuid, port_name, port.uuid, start, s1.name, s2.name
    )


@pytest.fixture
def world(app: FastAPI, client: TestClient, admin: dict[str, str]) -> World:
    return build_world(app, client, admin)


def request_doc(w: World, **changes: Any) -> dict[str, Any]:
    names = sorted(w.hosts)
    doc: dict[str, Any] = {
        "components": [
            {"name": "a", "resources": {"VCPU": 6, "MEMORY_MB": 4096}, "site": w.site_a},
            {
                "name": "b",
                "resources": {"VCPU": 2},
                "elastic": {"MEMORY_MB": {"min": 1024, "max": 8192}},
                "host": names[-1],
            },
        ],
        "links": [{"a": "a", "b": "b", "bandwidth_gbps": 3}],
        "facility_ports": [
            {"site": w.site_b, "port": w.port, "component": "b", "vlan_count": 2, "bandwidth_gbps": 1}
        ],
        "earliest_start": iso(w.start),
        "latest_end": iso(w.start + 6 * HOUR),
        "duration": "PT1H",
        "limit": 2,
        "alternates": 3,
    }
    doc.update(changes)
    return doc


def find(w: World, doc: dict[str, Any]) -> dict[str, Any]:
    r = w.client.post("/v1/find-slot", json=doc, headers=w.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def claim(w: World, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    return w.client.post("/v1/claims", json=body, headers=headers or w.headers)


def allocations_of(db: Database, consumer_uuid: str) -> Counter[tuple[str, str, int, int, int, int | None]]:
    """(provider name, class, amount, start, end, tag) of the consumer's rows, as a multiset."""
    with UnitOfWork(db, readonly=True) as uow:
        rows = uow.session.execute(
            select(
                ProviderRow.name,
                AllocationRow.resource_class,
                AllocationRow.amount,
                AllocationRow.start_s,
                AllocationRow.end_s,
                AllocationRow.vlan_tag,
            )
            .join(ProviderRow, ProviderRow.id == AllocationRow.provider_id)
            .join(ConsumerRow, ConsumerRow.id == AllocationRow.consumer_id)
            .where(ConsumerRow.uuid == consumer_uuid)
        ).all()
    return Counter((str(a), str(b), int(c), int(d), int(e), f) for a, b, c, d, e, f in rows)


def audit_clean(db: Database) -> None:
    with UnitOfWork(db, readonly=True) as uow:
        assert uow.allocations.overbooked() == []
        assert uow.allocations.vlan_clashes() == []


def expected_from_window(w: World, doc: dict[str, Any], win: dict[str, Any]) -> Counter[Any]:
    s = int(datetime.fromisoformat(win["start"]).timestamp())
    e = int(datetime.fromisoformat(win["end"]).timestamp())
    want: Counter[Any] = Counter()
    for comp in doc["components"]:
        for i, host in enumerate(win["placement"][comp["name"]]):
            amounts = dict(comp["resources"])
            amounts.update(win["grants"].get(comp["name"], [{}] * (i + 1))[i])
            for rc, amt in amounts.items():
                want[(host, rc, amt, s, e, None)] += 1
    for lreq, route in zip(doc["links"], win["routes"], strict=True):
        for link in route["links"]:
            want[(link, "BANDWIDTH_GBPS", lreq["bandwidth_gbps"], s, e, None)] += 1
    for preq, port in zip(doc["facility_ports"], win["ports"], strict=True):
        for tag in port["vlans"]:
            want[(f"{w.site_b}/{w.port}", "VLAN", 1, s, e, tag)] += 1
        want[(f"{w.site_b}/{w.port}", "BANDWIDTH_GBPS", preq["bandwidth_gbps"], s, e, None)] += 1
        for link in port["links"]:
            want[(link, "BANDWIDTH_GBPS", preq["bandwidth_gbps"], s, e, None)] += 1
    return want


# -- tests -------------------------------------------------------------------------------------------------


def test_window_id_claims_exactly_the_window(world: World) -> None:
    doc = request_doc(world)
    result = find(world, doc)
    assert result["windows"]
    win = result["windows"][0]
    assert win["allocation_request"]
    assert win["routes"][0]["links"] == [world.link]
    assert len(win["ports"][0]["vlans"]) == 2
    r = claim(
        world, {"allocation_request": win["allocation_request"], "consumer": {"kind": "lease", "name": "x"}}
    )
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["kind"] == "lease"
    assert out["status"] == "PENDING"
    assert out["swaps"] == []
    assert r.headers["Location"] == f"/v1/claims/{out['uuid']}"
    got = allocations_of(world.db, out["uuid"])
    assert got == expected_from_window(world, doc, win)
    # the response lists the same allocations
    assert len(out["allocations"]) == sum(got.values())
    audit_clean(world.db)
    # an id claims once
    again = claim(world, {"allocation_request": win["allocation_request"]})
    assert again.status_code == 409
    assert again.json()["code"] == "allocation_request_claimed"
    assert out["uuid"] in again.json()["detail"]


def table_counts(db: Database) -> dict[str, int]:
    with UnitOfWork(db, readonly=True) as uow:
        return {
            name: int(uow.session.execute(select(func.count()).select_from(table)).scalar_one())
            for name, table in Base.metadata.tables.items()
        }


def test_a_search_writes_nothing_and_its_ids_carry_the_windows(world: World) -> None:
    find(world, request_doc(world, limit=1))  # the first search may make the signing key, once
    before = table_counts(world.db)
    result = find(world, request_doc(world, limit=3, duration="PT90M"))
    assert table_counts(world.db) == before
    ids = [w["allocation_request"] for w in result["windows"]]
    assert len(ids) == len(set(ids)) == len(result["windows"]) >= 2
    ars = world.app.state.services.allocation_requests
    for win, ar in zip(result["windows"], ids, strict=True):
        body = ars.load(ar, project="demo")
        assert [i.host_name for i in body.instances] == [h for hs in win["placement"].values() for h in hs]
    # a cached answer carries the same ids
    again = find(world, request_doc(world, limit=3, duration="PT90M"))
    assert again["cached"] is True
    assert [w["allocation_request"] for w in again["windows"]] == ids


def test_alternates_replace_a_taken_host(world: World) -> None:
    doc = request_doc(world)
    win = find(world, doc)["windows"][0]
    chosen = win["placement"]["a"][0]
    alternates = win["alternates"]["a"]
    assert alternates, "the site has four hosts: some must be alternates"
    s = int(datetime.fromisoformat(win["start"]).timestamp())
    e = int(datetime.fromisoformat(win["end"]).timestamp())
    # someone else takes the chosen host meanwhile (explicit items)
    taken = claim(
        world,
        {
            "items": [{"provider_uuid": world.hosts[chosen], "resource_class": "VCPU", "amount": 8}],
            "start": iso(s),
            "end": iso(e),
            "consumer": {"kind": "lease"},
        },
    )
    assert taken.status_code == 201, taken.text
    r = claim(world, {"allocation_request": win["allocation_request"], "consumer": {"kind": "hold"}})
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["kind"] == "hold"
    assert out["status"] == "HELD"
    assert out["expires"] is not None
    assert out["swaps"] == [{"component": "a", "instance": 0, "from_host": chosen, "to_host": alternates[0]}]
    hosts_used = {a["provider_name"] for a in out["allocations"] if a["resource_class"] == "VCPU"}
    assert chosen not in hosts_used
    assert alternates[0] in hosts_used
    audit_clean(world.db)


def test_conflict_when_every_alternate_is_taken(world: World) -> None:
    win = find(world, request_doc(world))["windows"][0]
    s = int(datetime.fromisoformat(win["start"]).timestamp())
    e = int(datetime.fromisoformat(win["end"]).timestamp())
    for host in [win["placement"]["a"][0], *win["alternates"]["a"]]:
        r = claim(
            world,
            {
                "items": [{"provider_uuid": world.hosts[host], "resource_class": "VCPU", "amount": 4}],
                "start": iso(s),
                "end": iso(e),
            },
        )
        assert r.status_code == 201, r.text
    r = claim(world, {"allocation_request": win["allocation_request"]})
    assert r.status_code == 409
    body = r.json()
    assert body["code"] == "capacity_conflict"
    assert all(err["pointer"].startswith("/allocation_request") for err in body["errors"])
    audit_clean(world.db)


def test_link_conflict_answers_409_without_trying_hosts(world: World) -> None:
    win = find(world, request_doc(world))["windows"][0]
    s = int(datetime.fromisoformat(win["start"]).timestamp())
    e = int(datetime.fromisoformat(win["end"]).timestamp())
    r = claim(
        world,
        {
            "items": [{"provider_uuid": world.link_uuid, "resource_class": "BANDWIDTH_GBPS", "amount": 9}],
            "start": iso(s),
            "end": iso(e),
        },
    )
    assert r.status_code == 201, r.text
    r = claim(world, {"allocation_request": win["allocation_request"]})
    assert r.status_code == 409
    assert r.json()["code"] == "capacity_conflict"
    assert any(world.link in err["pointer"] for err in r.json()["errors"])


def test_unknown_and_expired_ids(world: World) -> None:
    r = claim(world, {"allocation_request": "00000000-0000-4000-8000-000000000000"})
    assert r.status_code == 404
    assert r.json()["code"] == "allocation_request_not_found"
    win = find(world, request_doc(world))["windows"][0]
    ars = world.app.state.services.allocation_requests
    ars.clock = lambda: time.time() + ars.ttl_s + 1
    r = claim(world, {"allocation_request": win["allocation_request"]})
    assert r.status_code == 410
    assert r.json()["code"] == "allocation_request_expired"


def test_a_forged_or_altered_id_reads_as_unknown(world: World) -> None:
    ar = find(world, request_doc(world))["windows"][0]["allocation_request"]
    prefix, data, tag = ar.split(".")
    flipped = data[:-1] + ("A" if data[-1] != "A" else "B")
    other_key = IdSealer(lambda: b"another replica's key").seal("", 2**40, ARBody(0, 1, ()))
    # other spellings of the same bytes (the decoder skips characters outside its alphabet and the
    # unused low bits of the last one) must not pass either: a claim's consumer uuid derives from the
    # id's text, so a second spelling would claim the window twice
    respelled = f"{prefix}.{data[:5]}!!!!{data[5:]}.{tag}"
    for bad in (
        f"{prefix}.{flipped}.{tag}",
        f"{prefix}.{data}.{tag[::-1]}",
        respelled,
        other_key,
        ar + "x",
        "ar1..",
        "ar1.%%%.x",
    ):
        r = claim(world, {"allocation_request": bad})
        assert r.status_code == 404, (bad, r.text)
        assert r.json()["code"] == "allocation_request_not_found"
    assert claim(world, {"allocation_request": ar}).status_code == 201


def test_replicas_on_one_database_share_the_key(world: World) -> None:
    """The key is made once and kept in the database: a second service graph on the same database
    (another replica) opens the first one's ids."""
    ar = find(world, request_doc(world))["windows"][0]["allocation_request"]
    replica = IdSealer(key_source(world.db, None))
    opened = replica.open(ar)
    assert opened is not None
    assert opened.project == "demo"
    assert IdSealer(key_source(world.db, "an operator's key")).open(ar) is None


def test_candidate_ids_are_private_to_the_project(world: World, user: dict[str, str]) -> None:
    r = world.client.get("/v1/allocation-candidates", params={"resources": "VCPU:2"}, headers=world.headers)
    assert r.status_code == 200, r.text
    ar = r.json()["allocation_requests"][0]["id"]
    other = claim(world, {"allocation_request": ar}, headers=user)
    assert other.status_code == 404
    mine = claim(world, {"allocation_request": ar})
    assert mine.status_code == 201, mine.text


def test_explicit_claims_and_idempotent_release(world: World, user: dict[str, str]) -> None:
    host = next(iter(world.hosts.values()))
    body = {
        "items": [{"provider_uuid": host, "resource_class": "VCPU", "amount": 8}],
        "start": iso(world.start),
        "end": iso(world.start + HOUR),
        "consumer": {"kind": "lease", "name": "mine"},
    }
    r = claim(world, body)
    assert r.status_code == 201, r.text
    uuid = r.json()["uuid"]
    assert claim(world, body).status_code == 409  # full
    assert world.client.delete(f"/v1/claims/{uuid}", headers=user).status_code == 404  # other project
    assert world.client.delete(f"/v1/claims/{uuid}", headers=world.headers).status_code == 204
    assert world.client.delete(f"/v1/claims/{uuid}", headers=world.headers).status_code == 204
    assert world.client.delete("/v1/claims/nope", headers=world.headers).status_code == 404
    assert claim(world, body).status_code == 201  # freed


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"allocation_request": "x", "items": [{"provider_uuid": "u", "resource_class": "VCPU", "amount": 1}]},
        {"items": [{"provider_uuid": "u", "resource_class": "VCPU", "amount": 1}]},
        {"allocation_request": "x", "consumer": {"kind": "nope"}},
        {"allocation_request": "x", "consumer": {"uuid": "00000000-0000-4000-8000-000000000000"}},
    ],
)
def test_bad_claim_bodies_are_422(world: World, body: dict[str, Any]) -> None:
    r = claim(world, body)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_error"
