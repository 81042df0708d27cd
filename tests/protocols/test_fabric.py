"""FABRIC compatibility: the reports API (POST /calendar/find-slot, GET /calendar) and the orchestrator's
paths (POST /resources/find-slot, GET /resources/calendar), driven with the request shapes FABRIC's own
tests and FABlib send.

A small testbed (``net``) has two sites without hosts joined by a link and a facility port, so link and
port accounting are exercised with nothing to place; the FABRIC-like testbed with three days of bookings
(``busy``, from tests/test_api_find_slot.py) checks answers against the independent calendar model.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from test_api_find_slot import DAY, HOUR, Broker, busy, epoch, iso
from test_find_slot_lane import CountingLane

from slotbroker.demo.bookings import BookedAmount, Booking
from slotbroker.services.inventory.demo_data import load_bookings
from slotbroker.store.models import ConsumerRow
from slotbroker.store.unit_of_work import UnitOfWork

__all__ = ["busy"]  # a fixture

PORT = "RENC-Chameleon"
TOPOLOGY = {
    "providers": [
        {"name": "RENC", "kind": "site"},
        {"name": "CLEM", "kind": "site"},
        {
            "name": "STAR",
            "kind": "site",
            "children": [
                {
                    "name": "star-h1",
                    "kind": "host",
                    "inventories": {"VCPU": 8, "MEMORY_MB": 32 * 1024, "DISK_GB": 100, "GPU_T4": 1},
                }
            ],
        },
    ],
    "links": [
        {"name": "RENC-CLEM", "endpoints": ["RENC", "CLEM"], "bandwidth_gbps": 100},
        {"name": "STAR-RENC", "endpoints": ["STAR", "RENC"], "bandwidth_gbps": 100},
    ],
    "facility_ports": [{"name": PORT, "site": "RENC", "vlans": "2100-2104", "bandwidth_gbps": 10}],
}


@dataclass
class Net:
    app: FastAPI
    client: TestClient
    headers: dict[str, str]
    t0: int  # a whole hour, a day ahead

    def at(self, hours: float) -> str:
        return iso(int(self.t0 + hours * HOUR))

    def find(self, resources: list[dict[str, Any]], *, hours: int = 1, results: int = 5, **more: Any) -> Any:
        body = {"start": self.at(0), "end": self.at(12), "duration": hours, "max_results": results}
        body |= {"resources": resources, **more}
        return self.client.post("/calendar/find-slot", json=body, headers=self.headers)

    def starts(self, resources: list[dict[str, Any]], **more: Any) -> list[float]:
        """The windows' starts in hours from t0."""
        r = self.find(resources, **more)
        assert r.status_code == 200, r.text
        return [(epoch(w["start"]) - self.t0) / HOUR for w in r.json()["windows"]]

    def book(self, name: str, first_h: float, last_h: float, *amounts: BookedAmount) -> None:
        start, end = int(self.t0 + first_h * HOUR), int(self.t0 + last_h * HOUR)
        loaded = load_bookings(
            self.app.state.services.db, [Booking(name, "p", start, end, amounts)], now_s=int(time.time())
        )
        assert loaded == 1

    def free(self, name: str) -> None:
        with UnitOfWork(self.app.state.services.db, readonly=True) as uow:
            consumer = uow.session.execute(
                select(ConsumerRow.uuid).where(ConsumerRow.name == name)
            ).scalar_one()
        self.app.state.services.claims.release(consumer)


@pytest.fixture
def net(app: FastAPI, client: TestClient, admin: dict[str, str]) -> Net:
    r = client.post("/v1/topology", json=TOPOLOGY, headers=admin)
    assert r.status_code == 200, r.text
    now = int(time.time())
    return Net(app, client, admin, now - now % HOUR + DAY)


LINK = {"type": "link", "site_a": "RENC", "site_b": "CLEM", "bandwidth": 25}
FACILITY = {"type": "facility_port", "name": PORT, "site": "RENC", "vlans": 5}


@pytest.mark.parametrize("path", ["/calendar/find-slot", "/resources/find-slot"])
def test_fabric_searches_run_in_the_find_slot_lane(net: Net, path: str) -> None:
    """In arrival order with find-slot's own searches (api/find_slot_lane.py), not on the shared pool."""
    lane = net.app.state.find_slot_lane = CountingLane()
    body = {"start": net.at(0), "end": net.at(12), "duration": 1, "max_results": 2, "resources": [LINK]}
    r = net.client.post(path, json=body, headers=net.headers)
    assert r.status_code == 200, r.text
    assert lane.runs == 1


# -- link-only and facility-port-only ----------------------------------------------------------------------


def test_a_link_only_request_between_sites_without_hosts_fits(net: Net) -> None:
    r = net.find([LINK], results=3)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [(epoch(w["start"]) - net.t0) / HOUR for w in body["windows"]] == [0, 1, 2]  # FABRIC's hourly grid
    assert body["total"] == 3
    assert all(w["placement"] == {} for w in body["windows"])


def test_a_saturated_link_blocks_and_freeing_it_unblocks(net: Net) -> None:
    net.book("big-transfer", 1, 3, BookedAmount("RENC-CLEM", "BANDWIDTH_GBPS", 80))
    assert net.starts([LINK]) == [0, 3, 4, 5, 6]  # 80 + 25 > 100 during hours 1 and 2
    assert net.starts([{**LINK, "bandwidth": 20}]) == [0, 1, 2, 3, 4]  # 80 + 20 fits exactly
    assert net.starts([LINK], hours=2) == [3, 4, 5, 6, 7]
    net.free("big-transfer")
    assert net.starts([LINK]) == [0, 1, 2, 3, 4]


def test_two_links_on_one_pair_add_up(net: Net) -> None:
    assert net.starts([{**LINK, "bandwidth": 60}, {**LINK, "bandwidth": 40}], results=1) == [0]
    assert net.starts([{**LINK, "bandwidth": 60}, {**LINK, "bandwidth": 41}]) == []


def test_an_exhausted_vlan_range_blocks_and_freeing_it_unblocks(net: Net) -> None:
    assert net.starts([FACILITY], results=2) == [0, 1]
    net.book("one-vlan", 0, 2, BookedAmount(f"RENC/{PORT}", "VLAN", 1, vlan_tag=2100))
    assert net.starts([FACILITY], results=2) == [2, 3]  # 4 of 5 tags free during hours 0 and 1
    assert net.starts([{**FACILITY, "vlans": 4}], results=2) == [0, 1]
    net.free("one-vlan")
    assert net.starts([FACILITY], results=2) == [0, 1]


def test_compute_with_a_link_to_a_site_without_hosts_fits(net: Net) -> None:
    compute = {"type": "compute", "site": "STAR", "cores": 4, "ram": 16, "disk": 10}
    r = net.find([compute, {"type": "link", "site_a": "STAR", "site_b": "RENC", "bandwidth": 10}], results=2)
    assert r.status_code == 200, r.text
    windows = r.json()["windows"]
    assert [(epoch(w["start"]) - net.t0) / HOUR for w in windows] == [0, 1]
    assert all(w["placement"] == {"vm1": ["star-h1"]} for w in windows)
    net.book("cpu", 0, 2, BookedAmount("star-h1", "VCPU", 6))
    assert net.starts(
        [compute, {"type": "link", "site_a": "STAR", "site_b": "RENC", "bandwidth": 10}], results=2
    ) == [2, 3]
    net.book("bw", 2, 3, BookedAmount("STAR-RENC", "BANDWIDTH_GBPS", 95))
    assert net.starts(
        [compute, {"type": "link", "site_a": "STAR", "site_b": "RENC", "bandwidth": 10}], results=2
    ) == [3, 4]


def test_unknown_sites_links_and_ports_answer_no_windows_as_fabric_does(net: Net) -> None:
    for resources, why in [
        ([{"type": "compute", "site": "NOWHERE", "cores": 1}], "no site 'NOWHERE'"),
        ([{**LINK, "site_a": "STAR"}], "no link between CLEM and STAR"),
        (
            [{"type": "facility_port", "name": "Nope", "site": "RENC", "vlans": 1}],
            "no facility port 'Nope' at RENC",
        ),
        ([{"type": "facility_port", "name": "Nope", "vlans": 1}], "no facility port named 'Nope'"),
    ]:
        r = net.find(resources)
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["windows"], body["total"]) == ([], 0), resources
        assert any(why in m for m in body["messages"]), body


# -- validation as FABRIC answers it ------------------------------------------------------------------------


def test_validation_is_400_naming_fabric_fields(net: Net) -> None:
    def problem(**changes: Any) -> list[str]:
        body: dict[str, Any] = {"start": net.at(0), "end": net.at(12), "duration": 1, "resources": [LINK]}
        r = net.client.post("/calendar/find-slot", json=body | changes, headers=net.headers)
        assert r.status_code == 400, (changes, r.text)
        return [e["pointer"] for e in r.json()["errors"]]

    link_no_bw = {"type": "link", "site_a": "RENC", "site_b": "CLEM"}
    assert problem(resources=[link_no_bw]) == ["/resources/0/bandwidth"]
    assert problem(resources=[LINK, {"type": "facility_port", "name": PORT, "site": "RENC"}]) == [
        "/resources/1/vlans"
    ]
    assert problem(resources=[{"type": "link", "site_a": "RENC", "bandwidth": 1}]) == ["/resources/0/site_b"]
    assert problem(end=net.at(31 * 24)) == ["/end"]  # over 30 days
    assert problem(end=net.at(1), duration=2) == ["/duration"]
    assert problem(end=net.at(0)) == ["/end"]
    assert problem(start="tomorrow") == ["/start"]
    assert problem(end="2026-01-01T00:00:00") == ["/end"]  # no offset
    assert problem(max_results=51) == ["/max_results"]
    unknown_model = [{"type": "compute", "site": "STAR", "cores": 1, "components": {"GPU_A3O": 1}}]
    r = net.client.post(
        "/calendar/find-slot",
        json={"start": net.at(0), "end": net.at(12), "duration": 1, "resources": [LINK, *unknown_model]},
        headers=net.headers,
    )
    assert r.status_code == 400, r.text
    pointers = [e["pointer"] for e in r.json()["errors"]]
    assert pointers == ["/resources/1/components/GPU_A3O"]
    assert "latest_end" not in r.text
    assert "/components/0" not in r.text
    # 30 days exactly is allowed, as in FABRIC
    assert (
        net.client.post(
            "/calendar/find-slot",
            json={"start": net.at(0), "end": net.at(30 * 24), "duration": 1, "resources": [LINK]},
            headers=net.headers,
        ).status_code
        == 200
    )


def test_times_come_back_in_fabric_format(net: Net) -> None:
    start = datetime.fromtimestamp(net.t0, UTC)
    fablib = "%Y-%m-%d %H:%M:%S %z"  # what FABlib's orchestrator client sends
    body = {
        "start": start.strftime(fablib),
        "end": (start + timedelta(hours=6)).strftime(fablib),
        "duration": 2,
        "resources": [LINK],
    }
    r = net.client.post("/calendar/find-slot", json=body, headers=net.headers)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["search_start"] == start.isoformat() == got["windows"][0]["start"]
    assert got["windows"][0]["end"] == (start + timedelta(hours=2)).isoformat()
    assert got["search_end"].endswith("+00:00")
    plus_two = start.astimezone(timezone(timedelta(hours=2)))
    body |= {"start": plus_two.isoformat(), "end": (plus_two + timedelta(hours=6)).isoformat()}
    window = net.client.post("/calendar/find-slot", json=body, headers=net.headers).json()["windows"][0]
    assert window["start"] == plus_two.isoformat()
    assert window["start"].endswith("+02:00")


# -- the orchestrator's paths, as FABlib calls them ----------------------------------------------------------


def test_orchestrator_find_slot_with_fablib_shapes(net: Net) -> None:
    start = datetime.fromtimestamp(net.t0, UTC)
    fablib = "%Y-%m-%d %H:%M:%S %z"
    body = {
        "start": start.strftime(fablib),
        "end": (start + timedelta(days=1)).strftime(fablib),
        "duration": 1,
        "resources": [
            # FablibManager._slice_to_resources + _normalize_component_keys: "{Type}-{Model}" keys
            {
                "type": "compute",
                "site": "STAR",
                "cores": 2,
                "ram": 8,
                "disk": 10,
                "components": {"GPU-Tesla T4": 1},
            },
            {"type": "link", "site_a": "STAR", "site_b": "RENC", "bandwidth": 10},
            {"type": "facility_port", "name": PORT, "site": "RENC", "vlans": 1},
        ],
        "max_results": 2,
        "use_live_data": True,
    }
    r = net.client.post("/resources/find-slot", json=body, headers=net.headers)
    assert r.status_code == 200, r.text
    env = r.json()
    assert (env["size"], env["type"]) == (1, "resources.find_slot")
    [answer] = env["data"]
    assert answer["total"] == 2
    assert answer["windows"][0]["start"] == start.isoformat()
    assert answer["windows"][0]["placement"] == {"vm1": ["star-h1"]}
    bad = net.client.post("/resources/find-slot", json={**body, "duration": 0}, headers=net.headers)
    assert bad.status_code == 400
    assert [e["pointer"] for e in bad.json()["errors"]] == ["/duration"]


def test_orchestrator_calendar_with_fablib_parameters(net: Net) -> None:
    net.book("bw", 1, 2, BookedAmount("RENC-CLEM", "BANDWIDTH_GBPS", 30))
    start = datetime.fromtimestamp(net.t0, UTC)
    params = {
        "start_date": start.isoformat(),
        "end_date": (start + timedelta(hours=3)).isoformat(),
        "interval": "hour",
        "site[]": ["RENC"],
    }
    r = net.client.get("/resources/calendar", params=params, headers=net.headers)
    assert r.status_code == 200, r.text
    env = r.json()
    assert (env["size"], env["type"]) == (1, "resources.calendar")
    [cal] = env["data"]
    assert cal["total"] == 3
    assert [s["links"][0]["bandwidth_allocated"] for s in cal["data"]] == [0, 30, 0]
    assert [s["name"] for s in cal["data"][0]["sites"]] == ["RENC"]
    r = net.client.get(
        "/resources/calendar",
        params={"start_date": "soon", "end_date": params["end_date"]},
        headers=net.headers,
    )
    assert r.status_code == 400
    assert r.json()["errors"][0]["pointer"] == "#/query/start_date"


# -- GET /calendar ------------------------------------------------------------------------------------------


def test_calendar_has_fabric_shape_and_reports_peaks(net: Net) -> None:
    net.book(
        "first", 1, 1.5, BookedAmount("RENC-CLEM", "BANDWIDTH_GBPS", 40), BookedAmount("star-h1", "VCPU", 2)
    )
    net.book(
        "second", 1.5, 2, BookedAmount("RENC-CLEM", "BANDWIDTH_GBPS", 40), BookedAmount("star-h1", "VCPU", 2)
    )
    net.book("tag", 1, 2, BookedAmount(f"RENC/{PORT}", "VLAN", 1, vlan_tag=2102))
    r = net.client.get(
        "/calendar",
        params={"start_time": net.at(0), "end_time": net.at(24), "interval": "day"},
        headers=net.headers,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"data", "interval", "query_start", "query_end", "total"}
    [day] = body["data"]
    assert set(day) == {"start", "end", "hosts", "sites", "links", "facility_ports"}
    [host] = day["hosts"]
    assert host == {
        "name": "star-h1",
        "site": "STAR",
        "cores_capacity": 8,
        "cores_allocated": 2,  # the peak: FABRIC would add the two back-to-back bookings up to 4
        "cores_available": 6,
        "ram_capacity": 32,
        "ram_allocated": 0,
        "ram_available": 32,
        "disk_capacity": 100,
        "disk_allocated": 0,
        "disk_available": 100,
        "components": {"GPU-Tesla T4": {"capacity": 1, "allocated": 0, "available": 1}},
    }
    assert {s["name"] for s in day["sites"]} >= {"STAR"}
    link = next(lk for lk in day["links"] if lk["name"] == "RENC-CLEM")
    assert (link["bandwidth_capacity"], link["bandwidth_allocated"], link["bandwidth_available"]) == (
        100,
        40,
        60,
    )
    [port] = day["facility_ports"]
    assert port["vlan_range"] == "2100-2104"
    assert port["total_vlans"] == 5
    assert port["vlans_allocated"] == ["2102"]
    assert port["vlans_available"] == "2100-2101,2103-2104"


def test_fabric_calendar_on_the_busy_testbed(busy: Broker) -> None:
    start = busy.hour + HOUR

    def get(**params: Any) -> Any:
        return busy.client.get("/calendar", params=params, headers=busy.headers)

    r = get(start_time=iso(start), end_time=iso(start + 2 * DAY), interval="day", site="STAR")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["interval"] == "day"
    assert len(body["data"]) == 2
    names = {"VCPU": "cores", "MEMORY_MB": "ram", "DISK_GB": "disk"}
    for i, interval in enumerate(body["data"]):
        b0 = start + i * DAY
        assert (epoch(interval["start"]), epoch(interval["end"])) == (b0, b0 + DAY)
        assert [s["name"] for s in interval["sites"]] == ["STAR"]
        assert interval["hosts"], "the site's hosts are listed"
        assert all(h["name"].startswith("star-") for h in interval["hosts"]), "site= filters hosts too"
        for host in interval["hosts"]:
            for rc, name in names.items():
                peak = busy.model.peak(host["name"], rc, b0, b0 + DAY)
                assert host[f"{name}_allocated"] == (peak // 1024 if rc == "MEMORY_MB" else peak)
                assert host[f"{name}_available"] == host[f"{name}_capacity"] - host[f"{name}_allocated"]
    weeks = get(
        start_time=iso(start), end_time=iso(start + 14 * DAY), interval="week", host="star-w1"
    ).json()["data"]
    assert len(weeks) == 2
    assert all([h["name"] for h in w["hosts"]] == ["star-w1"] for w in weeks)
    excluded = get(start_time=iso(start), end_time=iso(start + DAY), exclude_site="STAR").json()
    assert "STAR" not in [s["name"] for s in excluded["data"][0]["sites"]]
    assert all("STAR" not in (lk["site_a"], lk["site_b"]) for lk in excluded["data"][0]["links"])


def test_fabric_calendar_bad_dates_are_400(net: Net) -> None:
    a, b = net.at(1), net.at(25)
    for params, pointer in [
        ({"start_time": "nope", "end_time": b}, "start_time"),
        ({"start_time": a, "end_time": "2030-02-30T00:00:00+00:00"}, "end_time"),
        ({"start_time": a, "end_time": "2030-01-01T00:00:00"}, "end_time"),
        ({"start_time": b, "end_time": a}, "end_time"),
        ({"start_time": a, "end_time": b, "interval": "month"}, "interval"),
    ]:
        r = net.client.get("/calendar", params=params, headers=net.headers)
        assert r.status_code == 400, (params, r.text)
        assert any(e["pointer"] == f"#/query/{pointer}" for e in r.json()["errors"]), r.text


# -- the FABRIC-like testbed ------------------------------------------------------------------------------


def test_fabric_find_slot_answers_on_the_busy_testbed(busy: Broker) -> None:
    req: dict[str, Any] = {
        "start": busy.at(1),
        "end": busy.at(49),
        "duration": 4,
        "max_results": 3,
        "resources": [
            {
                "type": "compute",
                "site": "STAR",
                "cores": 8,
                "ram": 32,
                "disk": 100,
                "components": {"SmartNIC-ConnectX-6": 1},
            },
            {"type": "facility_port", "name": "Chameleon-TACC", "vlans": 2},
        ],
    }
    r = busy.client.post("/calendar/find-slot", json=req, headers=busy.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"windows", "total", "search_start", "search_end", "duration_hours"}
    assert body["duration_hours"] == 4
    assert body["total"] == len(body["windows"]) >= 1
    assert len(body["windows"]) <= 3
    assert epoch(body["search_start"]) == epoch(req["start"])
    vm = {"VCPU": 8, "MEMORY_MB": 32 * 1024, "DISK_GB": 100, "NIC_CONNECTX6": 1}
    for w in body["windows"]:
        start, end = epoch(w["start"]), epoch(w["end"])
        assert (start - epoch(req["start"])) % HOUR == 0, "FABRIC's hourly grid"
        assert end - start == 4 * HOUR
        [host] = w["placement"]["vm1"]
        assert busy.model.host_site[host] == "STAR"
        for rc, amount in vm.items():
            assert busy.model.peak(host, rc, start, end) + amount <= busy.model.capacity[(host, rc)]


# -- against a brute-force reference -------------------------------------------------------------------------


def _peak(spans: list[tuple[int, int, int]], start: int, end: int) -> int:
    """Highest concurrent amount in [start, end): usage only rises where a span starts."""
    inside = [(s, e, n) for s, e, n in spans if s < end and start < e]
    instants = {start} | {s for s, _, _ in inside if s > start}
    return max((sum(n for s, e, n in inside if s <= t < e) for t in instants), default=0)


def test_windows_match_a_brute_force_reference(net: Net) -> None:
    """Random bookings on the host and the link; every round, FABRIC's search (grid, per-hour checks,
    the jumps between compute searches) must give exactly the first windows a plain scan of the grid
    finds: start + h hours where peak usage plus the demand fits for the whole window."""
    rng = random.Random(13)
    cpu: list[tuple[int, int, int]] = []
    bw: list[tuple[int, int, int]] = []
    blocked = 0  # rounds where some grid hour was refused: the comparison is not trivially "all hours"
    for round_ in range(6):
        first, length = rng.randrange(0, 10) * 1800, rng.randrange(1, 6) * 1800  # half-hours: off the grid
        s, e = net.t0 + first, net.t0 + first + length
        room_cores, room_gbps = 8 - _peak(cpu, s, e), 100 - _peak(bw, s, e)  # never overbook
        if room_cores > 0:
            cores = rng.randrange(1, room_cores + 1)
            net.book(
                f"r{round_}", first / HOUR, (first + length) / HOUR, BookedAmount("star-h1", "VCPU", cores)
            )
            cpu.append((s, e, cores))
        if room_gbps > 0:
            gbps = rng.randrange(1, room_gbps + 1)
            link = BookedAmount("STAR-RENC", "BANDWIDTH_GBPS", gbps)
            net.book(f"l{round_}", first / HOUR, (first + length) / HOUR, link)
            bw.append((s, e, gbps))
        want_cores, want_gbps, hours = rng.randrange(1, 9), rng.randrange(10, 101, 10), rng.randrange(1, 4)
        expected = [
            h
            for h in range(12 - hours + 1)
            if _peak(cpu, net.t0 + h * HOUR, net.t0 + (h + hours) * HOUR) + want_cores <= 8
            and _peak(bw, net.t0 + h * HOUR, net.t0 + (h + hours) * HOUR) + want_gbps <= 100
        ][:5]
        resources = [
            {"type": "compute", "site": "STAR", "cores": want_cores},
            {"type": "link", "site_a": "RENC", "site_b": "STAR", "bandwidth": want_gbps},
        ]
        assert net.starts(resources, hours=hours) == expected, (round_, cpu, bw, want_cores, want_gbps, hours)
        blocked += expected != list(range(min(5, 12 - hours + 1)))
    assert blocked >= 2
