"""POST /v1/find-slot, its jobs and GET /v1/calendar on both backends (FABRIC: tests/protocols/).

Every returned window is checked against an independent, SQL-free model of the calendar built from the
very bookings the test loaded: a sorted sweep gives the peak usage of each (provider, class) over the
window, which plus what the window places must stay within the topology's capacity.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from live_server import poll_job
from slotbroker.demo.bookings import BookedAmount, Booking, synthetic_bookings
from slotbroker.demo.fabric import fabric_like_topology
from slotbroker.domain.network import facility_port_provider_name
from slotbroker.domain.providers import ProviderKind
from slotbroker.domain.topology import Topology
from slotbroker.services.find_slot.calendar_cache import CalendarCache
from slotbroker.services.find_slot.service import FindSlotService
from slotbroker.services.inventory.demo_data import load_bookings
from slotbroker.store.models import FindSlotJobRow
from slotbroker.store.unit_of_work import UnitOfWork

HOUR = 3600
DAY = 86_400
DAYS = 3


# -- an independent model of the calendar ----------------------------------------------------------------


def parse_vlans(spec: str) -> set[int]:
    tags: set[int] = set()
    for part in spec.split(","):
        lo, _, hi = part.strip().partition("-")
        tags.update(range(int(lo), int(hi or lo) + 1))
    return tags


@dataclass
class Model:
    """Capacities from the topology document and intervals from the loaded bookings."""

    capacity: dict[tuple[str, str], int] = field(default_factory=dict)
    host_site: dict[str, str] = field(default_factory=dict)
    link_ends: dict[str, tuple[str, str]] = field(default_factory=dict)
    port_tags: dict[str, set[int]] = field(default_factory=dict)
    intervals: dict[tuple[str, str], list[tuple[int, int, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    tags: dict[str, list[tuple[int, int, int]]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def of(cls, doc: Topology, bookings: list[Booking]) -> Model:
        m = cls()
        for node, parent, _ in doc.walk():
            if node.kind == ProviderKind.HOST:
                assert parent is not None
                m.host_site[node.name] = parent.name
                for rc, inv in node.inventories.items():
                    m.capacity[(node.name, rc)] = int((inv.total - inv.reserved) * inv.allocation_ratio)
        for link in doc.links:
            m.link_ends[link.name] = (link.endpoints[0], link.endpoints[1])
            m.capacity[(link.name, "BANDWIDTH_GBPS")] = link.bandwidth_gbps
        for port in doc.facility_ports:
            name = facility_port_provider_name(port.site, port.name)
            m.port_tags[name] = parse_vlans(port.vlans)
            m.capacity[(name, "BANDWIDTH_GBPS")] = port.bandwidth_gbps
        m.add(bookings)
        return m

    def add(self, bookings: list[Booking]) -> None:
        for b in bookings:
            for a in b.allocations:
                self.intervals[(a.provider_name, a.resource_class)].append((b.start_s, b.end_s, a.amount))
                if a.vlan_tag is not None:
                    self.tags[a.provider_name].append((b.start_s, b.end_s, a.vlan_tag))

    def peak(self, provider: str, rc: str, start: int, end: int) -> int:
        """Highest concurrent usage within [start, end): usage at the window start and at each booking
        start inside it (usage only rises at a start, intervals are half-open)."""
        spans = [(s, e, n) for s, e, n in self.intervals.get((provider, rc), []) if s < end and start < e]
        instants = {start} | {s for s, _, _ in spans if s > start}
        return max((sum(n for s, e, n in spans if s <= t < e) for t in instants), default=0)

    def tags_in_use(self, port: str, start: int, end: int) -> set[int]:
        return {t for s, e, t in self.tags.get(port, []) if s < end and start < e}


def epoch(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def walk_route(model: Model, start_site: str, links: list[str]) -> str:
    """Follow ``links`` from ``start_site``; each must touch the current site. Returns the last site."""
    here = start_site
    for name in links:
        a, b = model.link_ends[name]
        assert here in (a, b), f"link {name} does not touch {here}"
        here = b if here == a else a
    return here


def assert_fits(model: Model, req: dict[str, Any], window: dict[str, Any], now: int) -> None:
    """The window's placement, routes and ports really fit, by the independent model."""
    start, end = epoch(window["start"]), epoch(window["end"])
    assert start >= now
    assert start >= epoch(req["earliest_start"])
    assert end <= epoch(req["latest_end"])
    assert end - start == window["duration_s"]
    placed: dict[tuple[str, str], int] = defaultdict(int)
    for comp in req["components"]:
        hosts = window["placement"][comp["name"]]
        assert len(hosts) == comp.get("count", 1)
        site = window["sites"][comp["name"]]
        for host in hosts:
            assert model.host_site[host] == site, f"{host} is not at {site}"
            for rc, amount in comp.get("resources", {}).items():
                placed[(host, rc)] += amount
        if "site" in comp:
            assert site == comp["site"]
        if "host" in comp:
            assert set(hosts) == {comp["host"]}
    link_use: dict[str, int] = defaultdict(int)
    routes = {(r["a"], r["b"]): r for r in window["routes"]}
    assert len(routes) == len(req.get("links", []))
    for lk in req.get("links", []):
        route = routes[(lk["a"], lk["b"])]
        site_a, site_b = window["sites"][lk["a"]], window["sites"][lk["b"]]
        assert walk_route(model, site_a, route["links"]) == site_b
        assert (route["links"] == []) == (site_a == site_b)
        for name in route["links"]:
            link_use[name] += lk["bandwidth_gbps"]
    for name, gbps in link_use.items():
        placed[(name, "BANDWIDTH_GBPS")] += gbps
    ports = {(p["site"], p["port"]): p for p in window["ports"]}
    assert len(ports) == len(req.get("facility_ports", []))
    for fp in req.get("facility_ports", []):
        got = ports[(fp["site"], fp["port"])]
        name = facility_port_provider_name(fp["site"], fp["port"])
        assert len(got["vlans"]) == fp.get("vlan_count", 1) == len(set(got["vlans"]))
        assert set(got["vlans"]) <= model.port_tags[name], "VLAN tag outside the port's range"
        assert not set(got["vlans"]) & model.tags_in_use(name, start, end), "VLAN tag already booked"
        # routed from the component's site to the port's site
        assert walk_route(model, window["sites"][fp["component"]], got["links"]) == fp["site"]
        placed[(name, "BANDWIDTH_GBPS")] += fp.get("bandwidth_gbps", 0)
    for (provider, rc), amount in placed.items():
        if amount == 0:
            continue
        peak = model.peak(provider, rc, start, end)
        cap = model.capacity[(provider, rc)]
        assert peak + amount <= cap, f"{provider} {rc}: {peak} booked + {amount} placed > {cap}"


# -- fixtures --------------------------------------------------------------------------------------------


@dataclass
class Broker:
    client: TestClient
    headers: dict[str, str]
    app: FastAPI
    doc: Topology
    model: Model
    now: int
    hour: int  # the hour-aligned start of the synthetic bookings (at or before now)

    def post(self, body: Any, **headers: str) -> Any:
        return self.client.post("/v1/find-slot", json=body, headers={**self.headers, **headers})

    def at(self, hours: int) -> str:
        return iso(self.hour + hours * HOUR)


def import_topology(client: TestClient, admin: dict[str, str], doc: Topology) -> int:
    r = client.post("/v1/topology", json=doc.model_dump(mode="json", exclude_none=True), headers=admin)
    assert r.status_code == 200, r.text
    generation: int = r.json()["calendar_generation"]
    return generation


def broker(app: FastAPI, client: TestClient, admin: dict[str, str], bookings: bool) -> Broker:
    doc = fabric_like_topology()
    import_topology(client, admin, doc)
    now = int(time.time())
    hour = now - now % HOUR
    loaded = synthetic_bookings(doc, start_s=hour, days=DAYS, seed=1) if bookings else []
    if loaded:
        assert load_bookings(app.state.services.db, loaded, now_s=now) == len(loaded)
    return Broker(client, admin, app, doc, Model.of(doc, loaded), now, hour)


@pytest.fixture
def busy(app: FastAPI, client: TestClient, admin: dict[str, str]) -> Broker:
    """The FABRIC-like testbed with three days of synthetic bookings from the current hour."""
    return broker(app, client, admin, bookings=True)


@pytest.fixture
def empty(app: FastAPI, client: TestClient, admin: dict[str, str]) -> Broker:
    """The FABRIC-like testbed without bookings."""
    return broker(app, client, admin, bookings=False)


def multi_site_request(b: Broker) -> dict[str, Any]:
    return {
        "components": [
            {"name": "gpu", "resources": {"VCPU": 8, "MEMORY_MB": 32768, "GPU_A30": 1}},
            {"name": "workers", "count": 2, "resources": {"VCPU": 48, "MEMORY_MB": 65536}, "site": "STAR"},
            {"name": "db", "resources": {"VCPU": 4, "DISK_GB": 500}, "host": "tacc-w1"},
        ],
        "links": [
            {"a": "gpu", "b": "workers", "bandwidth_gbps": 10},
            {"a": "workers", "b": "db", "bandwidth_gbps": 5},
        ],
        "facility_ports": [
            {"site": "STAR", "port": "Chameleon-StarLight", "component": "workers", "vlan_count": 2},
            {"site": "WASH", "port": "Cloud-Facility-AWS", "component": "db", "bandwidth_gbps": 2},
        ],
        # two hours past the fixture's hour: at(1) is the next top of the hour, which a fixture built in
        # the last seconds of an hour reaches before its request does (then the answer is clamped to now)
        "earliest_start": b.at(2),
        "latest_end": b.at(DAYS * 24),
        "duration": "PT4H",
        "limit": 8,
    }


def placements(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The windows without their allocation-request ids, which are minted afresh for every search."""
    return [{k: v for k, v in w.items() if k != "allocation_request"} for w in result["windows"]]


def windows_only(result: dict[str, Any]) -> list[dict[str, Any]]:
    return list(result["windows"])


# -- find-slot -------------------------------------------------------------------------------------------


def test_every_window_fits_the_loaded_calendar(busy: Broker) -> None:
    req = multi_site_request(busy)
    r = busy.post(req)
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["cached"] is False
    assert 1 <= len(result["windows"]) <= req["limit"]
    assert result["search_start"] == req["earliest_start"].replace("+00:00", "Z")
    starts = [epoch(w["start"]) for w in result["windows"]]
    assert starts == sorted(starts)  # policy "earliest"
    for w in result["windows"]:
        assert_fits(busy.model, req, w, busy.now)
        assert w["sites"]["db"] == "TACC"
        assert all(h.startswith("star-") for h in w["placement"]["workers"])


@pytest.mark.parametrize("policy", ["first_fit", "best_fit", "spread", "latency", "least_gap"])
def test_every_policy_returns_fitting_windows(busy: Broker, policy: str) -> None:
    req = {
        "components": [
            {"name": "a", "count": 3, "resources": {"VCPU": 32, "MEMORY_MB": 131072}},
            {"name": "b", "resources": {"VCPU": 16, "NIC_CONNECTX5": 1}, "site": "NEWY"},
        ],
        "links": [{"a": "a", "b": "b", "bandwidth_gbps": 25}],
        "earliest_start": busy.at(2),
        "latest_end": busy.at(60),
        "duration": 6 * HOUR,
        "policy": policy,
        "limit": 5,
    }
    r = busy.post(req)
    assert r.status_code == 200, r.text
    assert r.json()["windows"]
    for w in r.json()["windows"]:
        assert_fits(busy.model, req, w, busy.now)


def test_windows_are_clamped_to_now(busy: Broker) -> None:
    req = {
        "components": [{"name": "vm", "resources": {"VCPU": 2}}],
        "earliest_start": iso(busy.now - 2 * DAY),
        "latest_end": busy.at(30),
        "duration": "PT1H",
        "limit": 3,
    }
    r = busy.post(req)
    assert r.status_code == 200, r.text
    result = r.json()
    assert epoch(result["search_start"]) >= busy.now
    assert result["windows"]
    for w in result["windows"]:
        assert_fits(busy.model, {**req, "earliest_start": iso(busy.now)}, w, busy.now)


def test_the_answer_is_deterministic(busy: Broker) -> None:
    req = multi_site_request(busy)
    first = busy.post(req).json()
    # a fresh service with its own index, searching the same database, answers the same
    fresh = FindSlotService(busy.app.state.services.db, CalendarCache(busy.app.state.services.db))
    again = fresh.find(req).model_dump(mode="json")
    assert placements(again) == placements(first)
    assert again["explanation"] == first["explanation"]
    # key order does not matter either
    reordered = dict(reversed(list(req.items())))
    assert placements(busy.post(reordered).json()) == placements(first)


def test_cache_serves_repeats_and_a_new_generation_invalidates(busy: Broker) -> None:
    req = multi_site_request(busy)
    first = busy.post(req).json()
    second = busy.post(req).json()
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["windows"] == first["windows"]
    assert second["calendar_generation"] == first["calendar_generation"]

    data = busy.doc.model_dump(mode="json", exclude_none=True)
    star = next(s for r in data["providers"] for s in r["children"] if s["name"] == "STAR")
    star["children"].append({"name": "star-w99", "kind": "host", "inventories": {"VCPU": 8}})
    generation = busy.client.post("/v1/topology", json=data, headers=busy.headers).json()[
        "calendar_generation"
    ]
    assert generation > first["calendar_generation"]
    third = busy.post(req).json()
    assert third["cached"] is False
    assert third["calendar_generation"] == generation


def test_prefer_respond_async_gives_a_job_with_the_same_windows(busy: Broker) -> None:
    req = multi_site_request(busy)
    sync = busy.post(req).json()
    r = busy.post(req, Prefer="respond-async")
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] in ("pending", "running", "done")
    assert r.headers["Location"] == f"/v1/find-slot/jobs/{job['id']}"
    assert int(r.headers["Retry-After"]) >= 1
    done = poll_job(busy.client, r.headers["Location"], busy.headers)
    assert done["status"] == "done", done
    assert placements(done["result"]) == placements(sync)
    assert done["finished_at"] is not None


def test_expensive_requests_become_jobs(busy: Broker) -> None:
    svc = busy.app.state.services.find_slot
    svc.settings = type(svc.settings)(async_cost=1.0)
    r = busy.post(multi_site_request(busy))
    assert r.status_code == 202
    assert poll_job(busy.client, r.headers["Location"], busy.headers)["status"] == "done"


def test_jobs_are_private_to_their_project(busy: Broker, user: dict[str, str]) -> None:
    r = busy.post(multi_site_request(busy), Prefer="respond-async")
    location = r.headers["Location"]
    assert busy.client.get(location, headers=user).status_code == 404  # admin's project is "demo"
    assert busy.client.get("/v1/find-slot/jobs/no-such-job", headers=busy.headers).status_code == 404
    mine = busy.client.post(
        "/v1/find-slot", json=multi_site_request(busy), headers={**user, "Prefer": "respond-async"}
    )
    assert mine.status_code == 202
    assert poll_job(busy.client, mine.headers["Location"], user)["status"] == "done"
    assert busy.client.get(mine.headers["Location"], headers=busy.headers).status_code == 200  # admin


def test_nothing_fits_explains_the_blocking_component_and_class(busy: Broker) -> None:
    # Past the synthetic bookings, hold the only FPGA of star-w1 for the whole range.
    start = busy.hour + (DAYS + 1) * DAY
    blocker = Booking("fpga-hold", "p", start, start + DAY, (BookedAmount("star-w1", "FPGA_U280", 1),))
    load_bookings(busy.app.state.services.db, [blocker], now_s=busy.now)
    req = {
        "components": [
            {"name": "small", "resources": {"VCPU": 2}},
            {"name": "fpga", "resources": {"VCPU": 4, "FPGA_U280": 1}, "host": "star-w1"},
        ],
        "earliest_start": iso(start),
        "latest_end": iso(start + DAY),
        "duration": "PT2H",
    }
    r = busy.post(req)
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["windows"] == []
    blockers = result["explanation"]["blockers"]
    assert any(b["component"] == "fpga" and b["resource_class"] == "FPGA_U280" for b in blockers), blockers
    # the same request a day later fits
    later = {**req, "earliest_start": iso(start + DAY), "latest_end": iso(start + 2 * DAY)}
    assert busy.post(later).json()["windows"]


def test_explain_false_answers_nothing_fits_without_an_explanation(busy: Broker) -> None:
    start = busy.hour + (DAYS + 1) * DAY
    blocker = Booking("fpga-hold", "p", start, start + DAY, (BookedAmount("star-w1", "FPGA_U280", 1),))
    load_bookings(busy.app.state.services.db, [blocker], now_s=busy.now)
    req = {
        "components": [{"name": "fpga", "resources": {"VCPU": 4, "FPGA_U280": 1}, "host": "star-w1"}],
        "earliest_start": iso(start),
        "latest_end": iso(start + DAY),
        "duration": "PT2H",
    }
    quiet = busy.post({**req, "explain": False})
    assert quiet.status_code == 200, quiet.text
    assert quiet.json()["windows"] == []
    assert quiet.json()["explanation"] is None
    explained = busy.post({**req, "explain": True}).json()  # not the cached quiet answer
    assert explained["explanation"]["blockers"], explained
    assert busy.post(req).json()["explanation"] == explained["explanation"]  # the default explains
    # a window found is the same window either way
    later = {**req, "earliest_start": iso(start + DAY), "latest_end": iso(start + 2 * DAY)}
    assert busy.post({**later, "explain": False}).json()["windows"] == busy.post(later).json()["windows"]


# -- bad input -------------------------------------------------------------------------------------------


def bad_cases(b: Broker) -> list[tuple[str, dict[str, Any], str]]:
    """(label, changes to a valid request, the pointer the error must name)."""
    comp = {"name": "vm", "resources": {"VCPU": 1}}
    return [
        ("end before start", {"latest_end": b.at(0)}, "/latest_end"),
        ("zero duration", {"duration": 0}, "/duration"),
        ("negative duration", {"duration": -60}, "/duration"),
        ("zero ISO duration", {"duration": "PT0S"}, "/duration"),
        ("range too long", {"latest_end": b.at(91 * 24 + 1)}, "/latest_end"),
        (
            "unknown class",
            {"components": [{"name": "vm", "resources": {"WIDGETS": 1}}]},
            "/components/0/resources/WIDGETS",
        ),
        (
            "unregistered custom class",
            {"components": [{"name": "vm", "resources": {"CUSTOM_FOO": 1}}]},
            "/components/0/resources/CUSTOM_FOO",
        ),
        ("unknown site", {"components": [{**comp, "site": "ATLANTIS"}]}, "/components/0/site"),
        ("a host is no site", {"components": [{**comp, "site": "star-w1"}]}, "/components/0/site"),
        (
            "unknown host",
            {"components": [comp, {**comp, "name": "vm2", "host": "star-w77"}]},
            "/components/1/host",
        ),
        (
            "unknown facility port",
            {"facility_ports": [{"site": "STAR", "port": "Nope", "component": "vm"}]},
            "/facility_ports/0/port",
        ),
        (
            "port at the wrong site",
            {"facility_ports": [{"site": "TACC", "port": "Chameleon-StarLight", "component": "vm"}]},
            "/facility_ports/0/port",
        ),
        (  # a check across a link's fields points at the field it names, not at the link
            "self-link",
            {
                "components": [comp, {**comp, "name": "vm2"}],
                "links": [{"a": "vm", "b": "vm", "bandwidth_gbps": 1}],
            },
            "/links/0/b",
        ),
        (
            "port with both vlan_count and vlans",
            {
                "facility_ports": [
                    {
                        "site": "STAR",
                        "port": "Chameleon-StarLight",
                        "component": "vm",
                        "vlan_count": 1,
                        "vlans": [101],
                    }
                ]
            },
            "/facility_ports/0/vlans",
        ),
        ("explain a string", {"explain": "false"}, "/explain"),
        ("explain a number", {"explain": 0}, "/explain"),
        ("explain null", {"explain": None}, "/explain"),
        ("explain a list", {"explain": [True]}, "/explain"),
        ("limit 0", {"limit": 0}, "/limit"),
        ("limit 51", {"limit": 51}, "/limit"),
        ("earliest_start not a date", {"earliest_start": "yesterday"}, "/earliest_start"),
        ("duration not ISO 8601", {"duration": "P1X"}, "/duration"),
        (
            "range in the past",
            {"earliest_start": iso(b.now - 3 * DAY), "latest_end": iso(b.now - 2 * DAY)},
            "/latest_end",
        ),
    ]


def test_bad_input_is_a_problem_naming_the_field(empty: Broker) -> None:
    valid = {
        "components": [{"name": "vm", "resources": {"VCPU": 1}}],
        "earliest_start": empty.at(1),
        "latest_end": empty.at(49),
        "duration": "PT4H",
    }
    assert empty.post(valid).status_code == 200
    for label, change, pointer in bad_cases(empty):
        r = empty.post({**valid, **change})
        assert 400 <= r.status_code < 500, (label, r.status_code, r.text)
        problem = r.json()
        assert r.headers["content-type"].startswith("application/problem+json"), label
        assert problem["status"] == r.status_code
        assert pointer in [e["pointer"] for e in problem["errors"]], (label, problem)
        # the same problem when a job is asked for: validation answers at once
        assert empty.post({**valid, **change}, Prefer="respond-async").status_code == r.status_code, label


def test_missing_token_and_non_object_bodies(empty: Broker) -> None:
    r = empty.client.post("/v1/find-slot", json={"components": []})
    assert r.status_code == 401
    assert r.json()["code"] == "unauthorized"
    for body in ([1, 2], "text", 3, None):
        r = empty.post(body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["errors"][0]["pointer"] == ""
    r = empty.client.post(
        "/v1/find-slot", content=b"{not json", headers={**empty.headers, "Content-Type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json()["code"] == "malformed_body"


# -- calendars -------------------------------------------------------------------------------------------


def test_calendar_used_is_the_peak_not_the_sum(empty: Broker) -> None:
    t = empty.hour + 2 * HOUR
    back_to_back = [
        Booking("first", "p", t, t + 1800, (BookedAmount("star-w1", "VCPU", 1),)),
        Booking("second", "p", t + 1800, t + HOUR, (BookedAmount("star-w1", "VCPU", 1),)),
    ]
    load_bookings(empty.app.state.services.db, back_to_back, now_s=empty.now)
    r = empty.client.get(
        "/v1/calendar",
        params={
            "start": iso(t),
            "end": iso(t + 2 * HOUR),
            "resolution": "hour",
            "kind": "host",
            "name": "star-w1",
            "resource_class": "VCPU",
        },
        headers=empty.headers,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["bucket_s"] == HOUR
    assert [epoch(s) for s in body["starts"]] == [t, t + HOUR]
    [row] = body["rows"]
    assert (row["kind"], row["name"], row["resource_class"], row["capacity"]) == (
        "host",
        "star-w1",
        "VCPU",
        128,
    )
    assert row["used"] == [1, 0]
    assert row["free"] == [127, 128]


def test_calendar_matches_the_loaded_bookings(busy: Broker) -> None:
    start = busy.hour + HOUR
    r = busy.client.get(
        "/v1/calendar",
        params={"start": iso(start), "end": iso(start + 2 * DAY), "resolution": "day", "kind": "host"},
        headers=busy.headers,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert [epoch(s) for s in body["starts"]] == [start, start + DAY]
    assert {row["kind"] for row in body["rows"]} == {"host"}
    assert len({row["name"] for row in body["rows"]}) == len(busy.model.host_site)
    for row in body["rows"]:
        for i, used in enumerate(row["used"]):
            b0 = start + i * DAY
            assert used == busy.model.peak(row["name"], row["resource_class"], b0, b0 + DAY), row
            assert row["free"][i] == row["capacity"] - used
    # filters by name and class
    r = busy.client.get(
        "/v1/calendar",
        params={
            "start": iso(start),
            "end": iso(start + DAY),
            "kind": ["host", "site"],
            "name": ["tacc-w1", "TACC"],
            "resource_class": "VCPU",
        },
        headers=busy.headers,
    )
    rows = r.json()["rows"]
    assert sorted((row["kind"], row["name"]) for row in rows) == [("host", "tacc-w1"), ("site", "TACC")]


def test_calendar_rejects_bad_queries(empty: Broker) -> None:
    def get(**params: str) -> Any:
        return empty.client.get("/v1/calendar", params=params, headers=empty.headers)

    a, b = empty.at(1), empty.at(25)
    r = get(start=a, end=b, resolution="month")
    assert r.status_code == 422
    assert r.json()["errors"][0]["pointer"] == "#/query/resolution"
    r = get(start=b, end=a)
    assert r.status_code == 422
    assert r.json()["errors"][0]["pointer"] == "#/query/end"
    assert get(start="soon", end=b).status_code == 422
    assert get(start="2030-01-01T00:00:00", end=b).status_code == 422  # no offset
    assert empty.client.get("/v1/calendar", params={"start": a, "end": b}).status_code == 401


@pytest.fixture(autouse=True)
def _stop_job_workers(app: FastAPI) -> Iterator[None]:
    yield
    pool = app.state.services.find_slot._pool
    if pool is not None:
        pool.shutdown(wait=True)


def _orphan(busy: Broker, doc: dict[str, Any], *, runs: int) -> str:
    """A job row as a process that died mid-search leaves it: running, its runner's claim run out."""
    job_id = str(uuid.uuid4())
    now = int(time.time())
    with UnitOfWork(busy.app.state.services.db) as uow:
        uow.session.add(
            FindSlotJobRow(
                id=job_id,
                project="demo",
                status="running",
                request=json.dumps(doc),
                expires_s=now + 3600,
                runner_until_s=now - 1,
                runs=runs,
            )
        )
        uow.commit()
    return job_id


def test_a_job_whose_process_died_is_run_again_by_a_reader(busy: Broker) -> None:
    req = multi_site_request(busy)
    sync = busy.post(req).json()
    job_id = _orphan(busy, req, runs=1)

    done = poll_job(busy.client, f"/v1/find-slot/jobs/{job_id}", busy.headers)  # this replica takes it over

    assert done["status"] == "done", done
    assert placements(done["result"]) == placements(sync)


def test_a_job_that_lost_its_process_too_often_is_reported_worker_lost(busy: Broker) -> None:
    job_id = _orphan(busy, multi_site_request(busy), runs=2)  # MAX_RUNS: it may be what kills them

    r = busy.client.get(f"/v1/find-slot/jobs/{job_id}", headers=busy.headers)

    assert r.status_code == 200
    assert r.json()["status"] == "failed"
    assert r.json()["error"]["code"] == "worker_lost"


def test_of_two_replicas_reading_an_orphaned_job_one_takes_it_over(busy: Broker) -> None:
    job_id = _orphan(busy, multi_site_request(busy), runs=1)
    here = busy.app.state.services.find_slot
    there = FindSlotService(here.db, here.calendar, here.settings)  # another replica's service
    now = int(time.time())

    taken = [here._take_over(job_id, now), there._take_over(job_id, now)]

    assert sorted(taken) == [False, True]
    assert poll_job(busy.client, f"/v1/find-slot/jobs/{job_id}", busy.headers)["status"] == "done"
    here.shutdown()
    there.shutdown()
