"""FABRIC compatibility: POST /calendar/find-slot and GET /calendar against the FABRIC-like testbed.

The windows are checked against the independent calendar model of tests/test_api_find_slot.py.
"""

from __future__ import annotations

from typing import Any

from slotbroker.services.protocols.fabric import translate as fabric_compat
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire.fabric import FabricFindSlotRequest
from test_api_find_slot import DAY, HOUR, Broker, busy, empty, epoch, iso

__all__ = ["busy", "empty"]  # fixtures


# -- FABRIC find-slot ------------------------------------------------------------------------------------


def fabric_request(b: Broker, **changes: Any) -> dict[str, Any]:
    req: dict[str, Any] = {
        "start": b.at(1),
        "end": b.at(49),
        "duration": 4,
        "max_results": 3,
        "resources": [
            {
                "type": "compute",
                "site": "STAR",
                "cores": 8,
                "ram": 32,
                "disk": 100,
                "components": {"SmartNIC_ConnectX_6": 1},
            },
            {"type": "link", "site_a": "STAR", "site_b": "TACC", "bandwidth": 10},
            {"type": "facility_port", "name": "Chameleon-TACC", "vlans": 2},
        ],
    }
    req.update(changes)
    return req


def test_fabric_find_slot_translates_and_answers(busy: Broker) -> None:
    req = fabric_request(busy)
    r = busy.client.post("/calendar/find-slot", json=req, headers=busy.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"windows", "total", "search_start", "search_end", "duration_hours"}
    assert body["duration_hours"] == 4
    assert body["total"] == len(body["windows"]) >= 1
    assert len(body["windows"]) <= 3
    assert epoch(body["search_start"]) == epoch(req["start"])
    assert epoch(body["search_end"]) == epoch(req["end"])
    with UnitOfWork(busy.app.state.services.db, readonly=True) as uow:
        native = fabric_compat.to_native(FabricFindSlotRequest.model_validate(req), uow)
    vm = native["components"][0]
    assert vm["resources"] == {"VCPU": 8, "MEMORY_MB": 32 * 1024, "DISK_GB": 100, "NIC_CONNECTX6": 1}
    anchor = native["components"][1]
    assert anchor["site"] == "TACC"
    assert anchor["name"].startswith(fabric_compat.ANCHOR)
    assert native["facility_ports"][0] == {
        "site": "TACC",
        "port": "Chameleon-TACC",
        "component": anchor["name"],
        "vlan_count": 2,
    }
    for w in body["windows"]:
        assert list(w["placement"]) == ["vm1"]  # anchors are not shown
        assert epoch(w["end"]) - epoch(w["start"]) == 4 * HOUR
        host = w["placement"]["vm1"][0]
        assert busy.model.host_site[host] == "STAR"
        start, end = epoch(w["start"]), epoch(w["end"])
        for rc, amount in vm["resources"].items():
            assert busy.model.peak(host, rc, start, end) + amount <= busy.model.capacity[(host, rc)]


def test_fabric_find_slot_rejects_bad_input_with_400(busy: Broker) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        (fabric_request(busy, max_results=0), "/max_results"),
        (fabric_request(busy, max_results=51), "/max_results"),
        (fabric_request(busy, start="tomorrow"), "/start"),
        (fabric_request(busy, start="2026-13-45T00:00:00+00:00"), "/start"),
        (fabric_request(busy, end="2026-01-01T00:00:00"), "/end"),  # no offset
        (fabric_request(busy, resources=[{"type": "facility_port", "name": "Nope"}]), "/resources/0/name"),
        (
            fabric_request(
                busy,
                resources=[{"type": "compute", "cores": 2}, {"type": "facility_port", "name": "Nowhere"}],
            ),
            "/resources/1/name",
        ),
        (fabric_request(busy, resources=[{"type": "link", "site_a": "STAR"}]), "/resources/0"),
    ]
    for body, pointer in cases:
        r = busy.client.post("/calendar/find-slot", json=body, headers=busy.headers)
        assert r.status_code == 400, (pointer, r.status_code, r.text)
        assert pointer in [e["pointer"] for e in r.json()["errors"]], r.text


def test_fabric_calendar(busy: Broker) -> None:
    start = busy.hour + HOUR

    def get(**params: Any) -> Any:
        return busy.client.get("/calendar", params=params, headers=busy.headers)

    r = get(start_time=iso(start), end_time=iso(start + 2 * DAY), interval="day", site="STAR")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["interval"] == "day"
    assert len(body["data"]) == 2
    for i, interval in enumerate(body["data"]):
        b0 = start + i * DAY
        assert (epoch(interval["start"]), epoch(interval["end"])) == (b0, b0 + DAY)
        assert [s["name"] for s in interval["sites"]] == ["STAR"]
        assert interval["hosts"], "the site's hosts are listed"
        assert all(h["name"].startswith("star-") for h in interval["hosts"]), "site= filters hosts too"
        for host in interval["hosts"]:
            for rc, allocated in host["allocated"].items():
                assert allocated == busy.model.peak(host["name"], rc, b0, b0 + DAY)
                assert host["available"][rc] == host["capacity"][rc] - allocated
    r = get(start_time=iso(start), end_time=iso(start + 14 * DAY), interval="week", host="star-w1")
    assert r.status_code == 200, r.text
    weeks = r.json()["data"]
    assert len(weeks) == 2
    assert all([h["name"] for h in w["hosts"]] == ["star-w1"] for w in weeks)
    excluded = get(start_time=iso(start), end_time=iso(start + DAY), exclude_site="STAR").json()
    assert "STAR" not in [s["name"] for s in excluded["data"][0]["sites"]]


def test_fabric_calendar_bad_dates_are_400(empty: Broker) -> None:
    a, b = empty.at(1), empty.at(25)
    for params, pointer in [
        ({"start_time": "nope", "end_time": b}, "start_time"),
        ({"start_time": a, "end_time": "2030-02-30T00:00:00+00:00"}, "end_time"),
        ({"start_time": a, "end_time": "2030-01-01T00:00:00"}, "end_time"),
        ({"start_time": b, "end_time": a}, "end_time"),
        ({"start_time": a, "end_time": b, "interval": "month"}, "interval"),
    ]:
        r = empty.client.get("/calendar", params=params, headers=empty.headers)
        assert r.status_code == 400, (params, r.text)
        assert any(e["pointer"] == f"#/query/{pointer}" for e in r.json()["errors"]), r.text
