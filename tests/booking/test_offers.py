"""Offers over the API on real databases (SQLite file and PostgreSQL): offer sets on the FABRIC-like
testbed hold their capacity, are pushed past capacity other offers hold, accept makes a lease and frees
the siblings, expiry and reject free capacity exactly once, and projects cannot see each other's offers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from conftest import PG_URL, require_postgres, reset_postgres
from slotbroker.api.app import create_app
from slotbroker.config import Settings
from slotbroker.demo.fabric import fabric_like_topology
from slotbroker.domain.claims import ClaimItem, ClaimRequest, ConsumerKind, ConsumerSpec
from slotbroker.domain.topology import ProviderNode
from slotbroker.services.access.tokens import Role, TokenService
from slotbroker.services.booking.lease_events import Sweep
from slotbroker.services.booking.offer_states import OfferConflict
from slotbroker.services.booking.offers import OfferService
from slotbroker.store import migrate
from slotbroker.store.db import Database
from slotbroker.store.models import AllocationRow, ConsumerRow, LeaseEventRow, OfferRow, ProviderRow
from slotbroker.store.unit_of_work import UnitOfWork

HOUR = 3600


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def epoch(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


class Bed:
    """The FABRIC-like topology imported over the API, with helpers to ask for and inspect offers."""

    def __init__(self, app: FastAPI, client: TestClient, admin: dict[str, str], user: dict[str, str]) -> None:
        self.app, self.client, self.admin, self.user = app, client, admin, user
        doc = fabric_like_topology()
        r = client.post("/v1/topology", json=doc.model_dump(mode="json", exclude_none=True), headers=admin)
        assert r.status_code == 200, r.text
        now = int(time.time())
        self.base = now - now % HOUR + 2 * HOUR  # a whole hour in the future: no clamping to now
        self.t0 = self.base
        self.hosts = {h.name: h for h in _hosts(doc.providers)}

    def fresh(self) -> Bed:
        """The next test's own stretch of time (four days later), so tests sharing the database never
        see each other's offers."""
        self.base += 4 * 24 * HOUR
        self.t0 = self.base
        return self

    @property
    def db(self) -> Database:
        db: Database = self.app.state.services.db
        return db

    @property
    def offers(self) -> OfferService:
        svc: OfferService = self.app.state.services.offers
        return svc

    def gpu_host(self) -> tuple[str, str, int]:
        """A host with GPUs: (name, class, count). The request for all of them fits only there."""
        for name, host in sorted(self.hosts.items()):
            for rc, inv in host.inventories.items():
                if rc.startswith("GPU_") and inv.total >= 2:
                    return name, rc, inv.total
        raise AssertionError("no GPU host in the demo topology")

    def tight(self, hours: int = 4, days: int = 2) -> dict[str, Any]:
        """All GPUs of one host for ``hours``: only one booking fits at a time."""
        host, rc, count = self.gpu_host()
        return {
            "components": [{"name": "gpu", "host": host, "resources": {rc: count, "VCPU": 4}}],
            "earliest_start": iso(self.t0),
            "latest_end": iso(self.t0 + days * 24 * HOUR),
            "duration": f"PT{hours}H",
        }

    def post_set(self, request: dict[str, Any], headers: dict[str, str] | None = None, **extra: Any) -> Any:
        r = self.client.post(
            "/v1/offer-sets", json={"request": request, **extra}, headers=headers or self.admin
        )
        assert r.status_code == 201, r.text
        assert r.headers["location"] == f"/v1/offer-sets/{r.json()['id']}"
        return r.json()

    def get_set(self, set_id: str) -> Any:
        r = self.client.get(f"/v1/offer-sets/{set_id}", headers=self.admin)
        assert r.status_code == 200, r.text
        return r.json()

    def consumer(self, offer_id: str) -> Any:
        """The offer's consumer (its hold, or the lease it became) as a plain row."""
        with UnitOfWork(self.db, readonly=True) as uow:
            return uow.session.execute(
                select(ConsumerRow.__table__)
                .join(OfferRow, OfferRow.consumer_id == ConsumerRow.id)
                .where(OfferRow.id == offer_id)
            ).one()

    def allocations(self, consumer_id: int) -> list[Any]:
        with UnitOfWork(self.db, readonly=True) as uow:
            return list(
                uow.session.execute(
                    select(AllocationRow.__table__).where(AllocationRow.consumer_id == consumer_id)
                ).all()
            )

    def host_uuid(self, name: str) -> str:
        with UnitOfWork(self.db, readonly=True) as uow:
            got = uow.session.scalar(select(ProviderRow.uuid).where(ProviderRow.name == name))
            assert got is not None
            return str(got)

    def book(self, host: str, amounts: dict[str, int], start: int, end: int) -> None:
        uuid = self.host_uuid(host)
        items = tuple(ClaimItem(uuid, rc, a) for rc, a in amounts.items())
        self.app.state.services.claims.claim(
            ClaimRequest(ConsumerSpec(ConsumerKind.LEASE, "other", start, end), items)
        )

    def first_window_start(self, request: dict[str, Any]) -> int:
        r = self.client.post("/v1/find-slot", json=request, headers=self.admin)
        assert r.status_code == 200, r.text
        return epoch(r.json()["windows"][0]["start"])

    def audit_clean(self) -> None:
        with UnitOfWork(self.db, readonly=True) as uow:
            assert uow.allocations.overbooked() == []
            assert uow.allocations.vlan_clashes() == []


def _hosts(nodes: list[ProviderNode]) -> list[ProviderNode]:
    out: list[ProviderNode] = []
    for n in nodes:
        if n.kind == "host":
            out.append(n)
        out.extend(_hosts(n.children))
    return out


def _token(db: Database, role: Role, project: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TokenService(db).create(project=project, role=role, name='t')}"}


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    """One database per backend for the whole module, the FABRIC-like topology imported once (the
    import dominates a test's cost); each test works in its own time range (``Bed.fresh``)."""
    if request.param == "postgres":
        require_postgres()
        reset_postgres()
        url = PG_URL
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('offers')}/slotbroker.db"
    db = Database(url)
    migrate.upgrade(db.engine)
    settings = Settings(
        database_url=db.url,
        migrate_on_start=False,
        rate_per_s=10_000,
        rate_burst=10_000,
        event_loop_interval_s=0,  # background loops off: the tests drive expiry themselves
    )
    app = create_app(settings, db=db)
    with TestClient(app) as client:
        yield Bed(app, client, _token(db, Role.ADMIN, "demo"), _token(db, Role.USER, "science"))
    db.dispose()


@pytest.fixture
def bed(shared: Bed) -> Bed:
    return shared.fresh()


def overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return epoch(a["start"]) < epoch(b["end"]) and epoch(b["start"]) < epoch(a["end"])


# -- creating offer sets ---------------------------------------------------------------------------------


def multi_site(bed: Bed) -> dict[str, Any]:
    return {
        "components": [
            {"name": "gpu", "resources": {"VCPU": 8, "MEMORY_MB": 32768, "GPU_A30": 1}},
            {"name": "workers", "count": 2, "resources": {"VCPU": 48, "MEMORY_MB": 65536}, "site": "STAR"},
        ],
        "links": [{"a": "gpu", "b": "workers", "bandwidth_gbps": 10}],
        "facility_ports": [
            {
                "site": "STAR",
                "port": "Chameleon-StarLight",
                "component": "workers",
                "vlan_count": 2,
                "bandwidth_gbps": 5,
            }
        ],
        "earliest_start": iso(bed.t0),
        "latest_end": iso(bed.t0 + 72 * HOUR),
        "min_duration": "PT2H",
        "max_duration": "PT8H",
    }


def test_offer_set_on_the_fabric_testbed_holds_each_offer(bed: Bed) -> None:
    body = bed.post_set(multi_site(bed), max_offers=6)
    assert body["status"] == "OPEN"
    offers = body["offers"]
    assert 4 <= len(offers) <= 6
    assert {o["strategy"] for o in offers} == {"earliest", "largest", "longest", "best_fit"}
    assert [o["position"] for o in offers] == list(range(len(offers)))
    created = epoch(body["created"].replace("+00:00", "Z"))
    assert epoch(body["expires"]) - created in (299, 300, 301)
    keys = set()
    for o in offers:
        assert o["state"] == "OFFERED"
        assert o["expires"] == body["expires"]
        assert o["lease"] is None
        assert epoch(o["start"]) >= bed.t0
        keys.add((o["start"], o["end"], str(o["placement"]), str(o["resources"]), str(o["ports"])))
        # the hold: one consumer with every concrete item of the window
        hold = bed.consumer(o["id"])
        assert (hold.kind, hold.status) == ("hold", "HELD")
        assert (hold.start_s, hold.end_s, hold.expires_s) == (
            epoch(o["start"]),
            epoch(o["end"]),
            epoch(o["expires"]),
        )
        rows = bed.allocations(hold.id)
        assert all((r.start_s, r.end_s) == (hold.start_s, hold.end_s) for r in rows)
        tags = sorted(r.vlan_tag for r in rows if r.resource_class == "VLAN")
        assert tags == sorted(o["ports"][0]["vlans"])
        assert len(tags) == 2
        instances = sum(len(v) for v in o["resources"].values())
        per_instance = sum(len(a) for v in o["resources"].values() for a in v)
        links = len(o["routes"][0]["links"]) + 1 + len(o["ports"][0]["links"])  # + the port's bandwidth
        assert instances == 3
        assert len(rows) == per_instance + links + 2
        held = sum(r.amount for r in rows if r.resource_class == "VCPU")
        assert held == sum(a["VCPU"] for v in o["resources"].values() for a in v)
    assert len(keys) == len(offers), "offers are distinct alternatives"
    # Offers that overlap in time never share a VLAN tag, and nothing is overbooked anywhere.
    for i, a in enumerate(offers):
        for b in offers[i + 1 :]:
            if overlap(a, b):
                assert not set(a["ports"][0]["vlans"]) & set(b["ports"][0]["vlans"])
    bed.audit_clean()
    assert bed.get_set(body["id"]) == body


def test_earliest_offers_are_consecutive_and_a_second_set_is_pushed_past_the_first(bed: Bed) -> None:
    req = bed.tight(hours=4)
    first = bed.post_set(req, strategies=["earliest"], max_offers=2)["offers"]
    assert [epoch(o["start"]) - bed.t0 for o in first] == [0, 4 * HOUR]
    second = bed.post_set(req, strategies=["earliest", "best_fit"], max_offers=3)["offers"]
    assert len(second) == 3
    assert min(epoch(o["start"]) for o in second) >= bed.t0 + 8 * HOUR
    everything = first + second
    for i, a in enumerate(everything):
        for b in everything[i + 1 :]:
            assert not overlap(a, b), "one GPU host: held offers never overlap"
    bed.audit_clean()


def test_accept_makes_a_lease_rejects_the_siblings_and_frees_their_capacity(bed: Bed) -> None:
    req = bed.tight(hours=4)
    body = bed.post_set(req, strategies=["earliest"], max_offers=3)
    offers = body["offers"]
    assert bed.first_window_start(req) == bed.t0 + 12 * HOUR  # all three held
    chosen = offers[1]
    r = bed.client.post(f"/v1/offers/{chosen['id']}/accept", headers=bed.admin)
    assert r.status_code == 200, r.text
    lease = r.json()
    assert lease["status"] == "PENDING"
    assert (lease["start"], lease["end"], lease["placement"]) == (
        chosen["start"],
        chosen["end"],
        chosen["placement"],
    )
    assert (lease["offer_id"], lease["offer_set_id"]) == (chosen["id"], body["id"])
    after = bed.get_set(body["id"])
    assert after["status"] == "ACCEPTED"
    assert [o["state"] for o in after["offers"]] == ["REJECTED", "ACCEPTED", "REJECTED"]
    assert after["offers"][1]["lease"] == lease["uuid"]
    row = bed.consumer(chosen["id"])
    assert (row.uuid, row.kind, row.status, row.expires_s) == (lease["uuid"], "lease", "PENDING", None)
    assert len(bed.allocations(row.id)) == 2
    with UnitOfWork(bed.db, readonly=True) as uow:
        events = dict(
            uow.session.execute(
                select(LeaseEventRow.kind, LeaseEventRow.due_s).where(LeaseEventRow.consumer_id == row.id)
            ).all()
        )
    assert events == {"start": row.start_s, "before_end": row.end_s - 3600, "end": row.end_s}
    for sibling in (offers[0], offers[2]):
        hold = bed.consumer(sibling["id"])
        assert hold.status == "REJECTED"
        assert bed.allocations(hold.id) == []
    assert bed.first_window_start(req) == bed.t0  # the rejected siblings' capacity is free again
    # accepting again, or a sibling, is refused
    for offer in (chosen, offers[0]):
        r = bed.client.post(f"/v1/offers/{offer['id']}/accept", headers=bed.admin)
        assert r.status_code == 409, r.text
        assert r.json()["code"] == "offer_not_open"
    bed.audit_clean()


def test_an_expired_offer_cannot_be_accepted(bed: Bed) -> None:
    """A second app on the same database, with Settings(offer_ttl_s=1): offers expire in a second."""
    settings = Settings(
        database_url=bed.db.url,
        migrate_on_start=False,
        rate_per_s=10_000,
        rate_burst=10_000,
        offer_ttl_s=1,
        event_loop_interval_s=0,
    )
    quick = Bed.__new__(Bed)
    quick.__dict__.update(bed.__dict__)
    quick.app = create_app(settings, db=bed.db)
    with TestClient(quick.app) as client:
        quick.client = client
        req = quick.tight(hours=4)
        body = quick.post_set(req, strategies=["earliest"], max_offers=2)
        assert epoch(body["expires"]) - epoch(body["created"].replace("+00:00", "Z")) <= 1
        time.sleep(2.1)
        offer = body["offers"][0]
        r = client.post(f"/v1/offers/{offer['id']}/accept", headers=quick.admin)
        assert r.status_code == 409, r.text
        assert r.json()["code"] == "offer_expired"
        after = quick.get_set(body["id"])
        assert after["status"] == "EXPIRED"
        assert {o["state"] for o in after["offers"]} == {"EXPIRED"}
        for o in body["offers"]:
            hold = quick.consumer(o["id"])
            assert hold.status == "EXPIRED"
            assert quick.allocations(hold.id) == []
        r = client.post(f"/v1/offers/{offer['id']}/accept", headers=quick.admin)
        assert r.json()["code"] == "offer_expired"
        assert quick.first_window_start(req) == quick.t0
        assert quick.consumer(offer["id"]).kind == "hold"


def test_the_sweeper_expires_due_offers_exactly_once(bed: Bed) -> None:
    req = bed.tight(hours=4)
    body = bed.post_set(req, strategies=["earliest"], max_offers=2)
    later = epoch(body["expires"])
    bed.offers.expire_due(later - 1)
    assert {o["state"] for o in bed.get_set(body["id"])["offers"]} == {"OFFERED"}
    with UnitOfWork(bed.db, readonly=True) as uow:
        before = uow.calendar.generation()
    assert bed.offers.expire_due(later) >= 2  # (and any older open offers of earlier tests)
    assert bed.offers.expire_due(later) == 0
    with UnitOfWork(bed.db, readonly=True) as uow:
        assert uow.calendar.generation() > before
    for o in body["offers"]:
        hold = bed.consumer(o["id"])
        assert hold.status == "EXPIRED"
        assert bed.allocations(hold.id) == []
    with pytest.raises(OfferConflict) as refused:  # even by a clock before the expiry: already EXPIRED
        bed.offers.accept(body["offers"][0]["id"], project=None, now_s=later - 1)
    assert refused.value.code == "offer_expired"
    assert bed.get_set(body["id"])["status"] == "EXPIRED"


def test_the_lease_event_loop_runs_the_offer_sweeper_each_tick(bed: Bed) -> None:
    periodic = bed.app.state.services.lease_events.periodic
    assert [j.act for j in periodic if isinstance(j, Sweep) and j.read == bed.offers.due_sets] == [
        bed.offers.expire_sets
    ]
    body = bed.post_set(bed.tight(), strategies=["earliest"], max_offers=1)
    bed.app.state.services.lease_events.tick(epoch(body["expires"]))
    hold = bed.consumer(body["offers"][0]["id"])
    assert hold.status == "EXPIRED"
    assert bed.allocations(hold.id) == []


def test_a_hold_reaped_by_the_claims_sweeper_expires_its_offer(bed: Bed) -> None:
    body = bed.post_set(bed.tight(), strategies=["earliest"], max_offers=1)
    later = epoch(body["expires"])
    assert bed.app.state.services.claims.expire_holds(now_s=later) >= 1
    # the offer's own clock is still before its expiry, but its hold is gone: refused, and EXPIRED
    r = bed.client.post(f"/v1/offers/{body['offers'][0]['id']}/accept", headers=bed.admin)
    assert r.status_code == 409
    assert r.json()["code"] == "offer_expired"
    assert bed.get_set(body["id"])["offers"][0]["state"] == "EXPIRED"


def test_reject_frees_capacity_at_once_and_is_idempotent(bed: Bed) -> None:
    req = bed.tight(hours=4)
    body = bed.post_set(req, strategies=["earliest"], max_offers=2)
    first = body["offers"][0]
    for _ in range(2):
        r = bed.client.post(f"/v1/offers/{first['id']}/reject", headers=bed.admin)
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "REJECTED"
    hold = bed.consumer(first["id"])
    assert hold.status == "REJECTED"
    assert bed.allocations(hold.id) == []
    assert bed.first_window_start(req) == bed.t0
    assert bed.get_set(body["id"])["status"] == "OPEN"
    r = bed.client.post(f"/v1/offers/{first['id']}/accept", headers=bed.admin)
    assert r.status_code == 409
    assert r.json()["code"] == "offer_not_open"
    second = body["offers"][1]
    assert bed.client.post(f"/v1/offers/{second['id']}/reject", headers=bed.admin).status_code == 200
    assert bed.get_set(body["id"])["status"] == "REJECTED"
    # an accepted offer cannot be rejected (cancel the lease instead)
    other = bed.post_set(req, strategies=["earliest"], max_offers=1)["offers"][0]
    assert bed.client.post(f"/v1/offers/{other['id']}/accept", headers=bed.admin).status_code == 200
    r = bed.client.post(f"/v1/offers/{other['id']}/reject", headers=bed.admin)
    assert r.status_code == 409
    assert r.json()["code"] == "offer_not_open"
    bed.audit_clean()


def test_projects_see_and_change_only_their_own_offers(bed: Bed) -> None:
    user = bed.user
    req = bed.tight()
    mine = bed.post_set(req, strategies=["earliest"], max_offers=1)  # admin, project demo
    offer = mine["offers"][0]["id"]
    for method, path in (
        ("GET", f"/v1/offer-sets/{mine['id']}"),
        ("GET", f"/v1/offers/{offer}"),
        ("POST", f"/v1/offers/{offer}/accept"),
        ("POST", f"/v1/offers/{offer}/reject"),
    ):
        r = bed.client.request(method, path, headers=user)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["code"] == "not_found"
    assert bed.get_set(mine["id"])["offers"][0]["state"] == "OFFERED"
    theirs = bed.post_set(req, headers=user, strategies=["earliest"], max_offers=1)
    assert theirs["project"] == "science"
    assert bed.client.get(f"/v1/offer-sets/{theirs['id']}", headers=user).status_code == 200
    assert (
        bed.client.get(f"/v1/offer-sets/{theirs['id']}", headers=bed.admin).status_code == 200
    )  # admins: all
    r = bed.client.post(f"/v1/offers/{theirs['offers'][0]['id']}/accept", headers=user)
    assert r.status_code == 200
    assert r.json()["project"] == "science"
    assert bed.client.get("/v1/offers/nonexistent", headers=user).status_code == 404
    assert bed.client.get("/v1/offer-sets/x", headers={}).status_code == 401


# -- strategies ------------------------------------------------------------------------------------------


def test_largest_takes_up_to_twice_the_request_where_free(bed: Bed) -> None:
    host, _, _ = bed.gpu_host()
    req = {
        "components": [
            {"name": "vm", "count": 2, "resources": {"VCPU": 8, "MEMORY_MB": 16384}, "site": "STAR"},
            {"name": "pinned", "host": host, "resources": {"VCPU": 8}},
        ],
        "earliest_start": iso(bed.t0),
        "latest_end": iso(bed.t0 + 24 * HOUR),
        "duration": "PT2H",
    }
    # leave 12 VCPU free on the pinned host for the whole day
    bed.book(host, {"VCPU": 116}, bed.t0 - HOUR, bed.t0 + 25 * HOUR)
    body = bed.post_set(req, strategies=["largest"], max_offers=2)
    assert len(body["offers"]) == 2
    for o in body["offers"]:
        assert o["strategy"] == "largest"
        assert o["resources"]["vm"] == [{"VCPU": 16, "MEMORY_MB": 32768}] * 2
        assert o["resources"]["pinned"] == [{"VCPU": 12}]  # twice would be 16; only 12 are free
        hold = bed.consumer(o["id"])
        assert sum(r.amount for r in bed.allocations(hold.id) if r.resource_class == "VCPU") == 16 + 16 + 12
    earliest = bed.post_set(req, strategies=["earliest"], max_offers=1)["offers"][0]
    assert earliest["resources"]["vm"] == [{"VCPU": 8, "MEMORY_MB": 16384}] * 2
    bed.audit_clean()


def test_longest_takes_the_maximum_duration(bed: Bed) -> None:
    host, _, _ = bed.gpu_host()
    req = {
        "components": [{"name": "vm", "host": host, "resources": {"VCPU": 100}}],
        "earliest_start": iso(bed.t0),
        "latest_end": iso(bed.t0 + 24 * HOUR),
        "min_duration": "PT1H",
        "max_duration": "PT6H",
    }
    bed.book(host, {"VCPU": 100}, bed.t0 + 2 * HOUR, bed.t0 + 4 * HOUR)  # only 2 h fit before it
    body = bed.post_set(req, strategies=["earliest", "longest"], max_offers=2)
    by = {o["strategy"]: o for o in body["offers"]}
    assert epoch(by["earliest"]["start"]) == bed.t0
    assert by["earliest"]["duration_s"] == 2 * HOUR
    assert by["longest"]["duration_s"] == 6 * HOUR
    assert epoch(by["longest"]["start"]) >= bed.t0 + 4 * HOUR
    bed.audit_clean()


# -- nothing fits, bad input -----------------------------------------------------------------------------


def test_nothing_fits_gives_an_empty_set_with_an_explanation(bed: Bed) -> None:
    _host, rc, count = bed.gpu_host()
    req = bed.tight()
    req["components"][0]["resources"] = {rc: count + 1}
    body = bed.post_set(req)
    assert body["status"] == "EMPTY"
    assert body["offers"] == []
    assert body["explanation"]["blockers"]
    assert bed.get_set(body["id"])["status"] == "EMPTY"


def test_bad_input_is_a_problem_naming_the_field(bed: Bed) -> None:
    good = bed.tight()
    with UnitOfWork(bed.db, readonly=True) as uow:
        consumers = uow.session.scalar(select(func.count()).select_from(ConsumerRow))
    cases: list[tuple[dict[str, Any], str]] = [
        ({"request": {**good, "duration": "soon"}}, "/request/duration"),
        (
            {"request": {**good, "components": [{"name": "x", "host": "nope", "resources": {"VCPU": 1}}]}},
            "/request/components/0/host",
        ),
        ({"request": good, "max_offers": 11}, "/max_offers"),
        ({"request": good, "strategies": ["cheapest"]}, "/strategies/0"),
        ({"request": good, "strategies": []}, "/strategies"),
        ({"request": good, "surprise": 1}, "/surprise"),
    ]
    for body, pointer in cases:
        r = bed.client.post("/v1/offer-sets", json=body, headers=bed.admin)
        assert r.status_code == 422, (body, r.text)
        problem = r.json()
        assert r.headers["content-type"].startswith("application/problem+json")
        assert problem["code"] == "validation_error"
        assert any(e["pointer"] == pointer for e in problem["errors"]), (pointer, problem)
    with UnitOfWork(bed.db, readonly=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(ConsumerRow)) == consumers


def test_holds_count_against_the_project_quota(bed: Bed) -> None:
    _, rc, count = bed.gpu_host()
    r = bed.client.put(f"/v1/quotas/science/{rc}", json={"max_concurrent": count - 1}, headers=bed.admin)
    assert r.status_code in (200, 201), r.text
    try:
        r = bed.client.post(
            "/v1/offer-sets", json={"request": bed.tight(), "strategies": ["earliest"]}, headers=bed.user
        )
        assert r.status_code == 403, r.text
        assert r.json()["code"] == "quota_exceeded"
        assert bed.first_window_start(bed.tight()) == bed.t0  # nothing held
    finally:
        assert bed.client.delete(f"/v1/quotas/science/{rc}", headers=bed.admin).status_code in (200, 204)
