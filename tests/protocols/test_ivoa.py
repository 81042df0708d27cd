"""IVOA ExecutionBroker endpoints (/ivoa) on both backends: the Calycopis worked examples replayed verbatim
(read from ../shared at run time, never copied), offers honouring the requested start interval and
duration, phases (EXPIRED set, accepted -> lease phases), accept/reject/cancel freeing capacity, YAML by
default and JSON on request, RFC 9457 problems naming the field, projects.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text
from test_find_slot_lane import CountingLane

from conftest import _token
from slotbroker.services.access.tokens import Role
from slotbroker.services.booking.offer_states import OFFER_EXPIRED, OfferConflict
from slotbroker.services.protocols.ivoa import (
    CURRENT_BASE,
    SESSION_KIND,
    canonical_kind,
    parse_start_interval,
    read_request,
    session_phase,
)
from slotbroker.store.db import Database
from slotbroker.wire.offers import OfferState

EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "ivoa-examples"
HOUR = 3600
HOST_CORES = 32
HOST_GIB = 64
TOPOLOGY = {
    "providers": [
        {
            "name": "ivoa-site",
            "kind": "site",
            "children": [
                {
                    "name": f"ivoa-h{i}",
                    "kind": "host",
                    "inventories": {"VCPU": HOST_CORES, "MEMORY_MB": HOST_GIB * 1024},
                }
                for i in range(1)
            ],
        }
    ]
}
NOTEBOOK = {
    "kind": "https://www.purl.org/ivoa.net/EB/schema/v1.0/types/executable/jupyter-notebook-1.0",
    "location": "https://example.org/notebook.ipynb",
}
COMPUTE_KIND = f"{CURRENT_BASE}compute/simple-compute-resource.yaml"


def row_counts(db: Database) -> dict[str, int]:
    with db.engine.connect() as conn:
        return {
            t: conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one()
            for t in inspect(db.engine).get_table_names()
        }


def example(name: str) -> Path:
    path = EXAMPLES / name
    if not path.is_file():
        pytest.skip(f"IVOA example {name} not found under {EXAMPLES} (the shared reference dir is absent)")
    return path


def epoch(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def seconds(duration: str) -> int:
    import isodate

    return int(isodate.parse_duration(duration).total_seconds())


class Broker:
    """The app with a one-host topology, a user token (project science) and request helpers."""

    def __init__(self, app: FastAPI, client: TestClient, admin: dict[str, str], user: dict[str, str]) -> None:
        self.app, self.client, self.admin, self.user = app, client, admin, user
        r = client.post("/v1/topology", json=TOPOLOGY, headers=admin)
        assert r.status_code == 200, r.text
        now = int(time.time())
        self.t0 = now - now % HOUR + 24 * HOUR  # a whole hour, a day ahead
        self.ttl = int(app.state.settings.offer_ttl_s)

    def post(
        self,
        body: bytes | dict[str, Any],
        *,
        ctype: str = "application/json",
        path: str = "/ivoa/requests",
        headers: dict[str, str] | None = None,
    ) -> Any:
        content = body if isinstance(body, bytes) else yaml.safe_dump(body).encode()
        if not isinstance(body, bytes):
            ctype = "application/yaml"
        return self.client.post(
            path, content=content, headers={**(headers or self.user), "Content-Type": ctype}
        )

    def ask(self, body: bytes | dict[str, Any], **kw: Any) -> dict[str, Any]:
        r = self.post(body, **kw)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/yaml")
        doc: dict[str, Any] = yaml.safe_load(r.text)
        return doc

    def get(self, url_path: str, headers: dict[str, str] | None = None) -> Any:
        r = self.client.get(url_path, headers=headers or self.user)
        assert r.status_code == 200, r.text
        return yaml.safe_load(r.text)

    def update(self, uuid: str, value: str, *, expect: int = 200) -> Any:
        body = {"kind": "uri:enum-value-update", "path": "phase", "value": value}
        r = self.client.post(
            f"/ivoa/sessions/{uuid}", json=body, headers={**self.user, "Accept": "application/json"}
        )
        assert r.status_code == expect, r.text
        return r.json()

    def tight(self, start: int, *, window: str = "PT0S", duration: str = "PT1H") -> dict[str, Any]:
        """The whole host (all its cores) at exactly ``start``: it fits once at a time."""
        return {
            "executable": NOTEBOOK,
            "compute": {
                "kind": COMPUTE_KIND,
                "cores": {"min": HOST_CORES, "max": HOST_CORES},
                "memory": {"min": 1, "max": 1},
            },
            "schedule": {"requested": {"start": f"{iso(start)}/{window}", "duration": duration}},
        }


@pytest.fixture
def broker(app: FastAPI, client: TestClient, admin: dict[str, str], user: dict[str, str]) -> Broker:
    return Broker(app, client, admin, user)


def check_offer_set(doc: dict[str, Any], broker: Broker, *, duration_s: int, first: int, last: int) -> None:
    """Structure and relations every YES offer set must have."""
    assert doc["kind"].startswith(CURRENT_BASE)
    assert doc["result"] == "YES", doc.get("messages")
    meta = doc["meta"]
    assert meta["url"].endswith(f"/ivoa/offersets/{meta['uuid']}")
    created = epoch(meta["created"])
    assert 1 <= len(doc["offers"]) <= 4
    for offer in doc["offers"]:
        assert offer["kind"] == SESSION_KIND
        assert offer["meta"]["url"].endswith(f"/ivoa/sessions/{offer['meta']['uuid']}")
        assert offer["phase"] == "OFFERED"
        assert epoch(offer["expires"]) == created + broker.ttl
        sched = offer["schedule"]
        start_text, _, zero = sched["available"]["start"].partition("/")
        assert zero == "PT0S"
        start = epoch(start_text)
        assert first <= start <= last, (iso(first), start_text, iso(last))
        assert seconds(sched["available"]["duration"]) == duration_s  # as requested, not 2x
        assert epoch(sched["releasing"]["start"]) == start + duration_s
        assert epoch(sched["preparing"]["start"]) <= start
        assert offer["compute"]["kind"] == COMPUTE_KIND
        assert offer["executable"]["kind"].startswith(CURRENT_BASE)


# -- the worked examples, verbatim ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "ctype"),
    [
        ("001-001-offerset-request.yaml", "application/yaml"),
        ("002-001-offerset-request.yaml", "application/yaml"),
        ("003-001-offerset-request.json", "application/json"),
        ("004-001-offerset-request.json", "application/json"),
        ("005-001-offerset-request.yaml", "application/yaml"),
        ("007-001-offerset-request.yaml", "application/yaml"),
    ],
)
@pytest.mark.parametrize("path", ["/ivoa/offersets", "/ivoa/requests"])
def test_examples_replay(broker: Broker, name: str, ctype: str, path: str) -> None:
    raw = example(name).read_bytes()
    request = yaml.safe_load(raw)
    doc = broker.ask(raw, ctype=ctype, path=path)
    created = epoch(doc["meta"]["created"])
    requested = request.get("schedule", {}).get("requested", {}).get("duration")
    duration_s = seconds(requested) if requested else 2 * HOUR  # the default: PT2H
    # no start interval in any example: the default is from now to now + 24 h
    check_offer_set(doc, broker, duration_s=duration_s, first=created, last=created + 24 * HOUR)

    asked = request.get("compute") or {}
    cores = asked.get("cores", {"min": 1})
    memory = asked.get("memory", {"min": 1})
    for offer in doc["offers"]:
        got = offer["compute"]
        for what, want in (("cores", cores), ("memory", memory)):
            low = want["min"]
            high = min(want.get("max", 2 * low), 2 * low)  # up to twice the request, never above max
            assert got[what]["min"] == got[what]["max"]
            assert low <= got[what]["min"] <= high, (what, got[what], want)
        assert offer["executable"]["location"] == request["executable"]["location"]

    first = doc["offers"][0]
    if name.startswith(("002", "003")):  # defaults for a minimal request
        assert first["compute"]["meta"]["name"] == "Default compute resource"
        texts = " ".join(m["message"] for m in doc["messages"])
        assert "default" in texts
        assert "PT2H" in texts
    if name.startswith("001"):
        assert first["executable"]["meta"]["name"] == "executable-001"
        assert first["compute"]["meta"]["name"] == "computer-001"
    if name.startswith("004"):  # `name` beside `kind`: read as meta.name, with a warning
        assert first["executable"]["meta"]["name"] == "executable-004"
        assert first["compute"]["meta"]["name"] == "computer-004"
        assert any(m["level"] == "WARN" for m in doc["messages"])
    if name.startswith("005"):  # the volume mount is echoed, not dropped
        (mount,) = first["compute"]["volumes"]
        assert mount["meta"]["name"] == "Calibration data"
        assert mount["path"] == "/calibration/"
        assert mount["resources"] == ["data-005-01"]
        assert [d["meta"]["name"] for d in first["data"]] == ["data-005-01"]
    if name.startswith("007"):
        assert [v["path"] for v in first["compute"]["volumes"]] == ["/calibration", "/input", "/working"]
        assert len(first["storage"]) == 3
        assert first["storage"][2]["size"] == {"min": 2048}
        assert len(first["data"]) == 3

    # the set and each session read back as they were offered
    again = broker.get(f"/ivoa/offersets/{doc['meta']['uuid']}")
    assert [o["meta"]["uuid"] for o in again["offers"]] == [o["meta"]["uuid"] for o in doc["offers"]]
    session = broker.get(f"/ivoa/sessions/{first['meta']['uuid']}")
    assert session == first


def test_malformed_example_is_a_problem_naming_the_fields(broker: Broker) -> None:
    raw = example("006-001-offerset-request.yaml").read_bytes()
    r = broker.post(raw, ctype="application/yaml", path="/ivoa/offersets")
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+yaml")  # no Accept: YAML
    problem = yaml.safe_load(r.text)
    assert problem["status"] == 400
    assert problem["code"] == "validation_error"
    pointers = {e["pointer"] for e in problem["errors"]}
    assert {"/volumes/0/kind", "/storage/0/resources"} <= pointers
    assert "timestamp" not in problem  # not Spring's default error body


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        ({"executable": {"kind": "urn:nope"}}, "/executable/kind"),
        ({"schedule": {"requested": {"duration": "one hour"}}}, "/schedule/requested/duration"),
        ({"schedule": {"requested": {"duration": "P99999999999999999999D"}}}, "/schedule/requested/duration"),
        ({"schedule": {"requested": {"start": "tomorrow"}}}, "/schedule/requested/start"),
        ({"compute": {"kind": COMPUTE_KIND, "cores": {"min": "many"}}}, "/compute/cores/min"),
        ({"compute": {"kind": COMPUTE_KIND, "volumes": ["nowhere"]}}, "/compute/volumes/0"),
        ({"colour": "blue"}, "/colour"),
    ],
)
def test_unreadable_requests_name_the_field(broker: Broker, change: dict[str, Any], pointer: str) -> None:
    r = broker.post({"executable": NOTEBOOK, **change})
    assert r.status_code == 400, r.text
    assert pointer in {e["pointer"] for e in yaml.safe_load(r.text)["errors"]}


def test_malformed_bodies_are_problems(broker: Broker) -> None:
    for raw, ctype in ((b"{not json", "application/json"), (b"a: [b", "application/yaml"), (b"", "")):
        r = broker.post(raw, ctype=ctype)
        assert r.status_code == 400, (raw, r.text)
        assert r.headers["content-type"].startswith("application/problem+yaml")
    r = broker.post(b"- just\n- a list\n", ctype="application/yaml")
    assert r.status_code == 400
    assert yaml.safe_load(r.text)["errors"][0]["pointer"] == ""


# -- schedule, capacity, NO ----------------------------------------------------------------------------


def test_offers_honour_the_requested_start_interval_and_duration(broker: Broker) -> None:
    start = broker.t0
    body = broker.tight(start, window="PT2H", duration="PT1H")
    doc = broker.ask(body)
    check_offer_set(doc, broker, duration_s=HOUR, first=start, last=start + 2 * HOUR)
    # the whole host each: offers are pushed later by each other's holds, never past the interval
    again = broker.ask(body)
    for offer in again["offers"]:
        begin = epoch(offer["schedule"]["available"]["start"].split("/")[0])
        assert start <= begin <= start + 2 * HOUR


def test_nothing_fits_is_result_no_with_a_message(broker: Broker) -> None:
    body = broker.tight(broker.t0)
    body["compute"]["cores"] = {"min": 10 * HOST_CORES}
    doc = broker.ask(body)
    assert doc["result"] == "NO"
    assert doc["offers"] == []
    assert any(m["level"] == "ERROR" for m in doc["meta"]["messages"])
    assert broker.get(f"/ivoa/offersets/{doc['meta']['uuid']}")["result"] == "NO"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"compute": {"kind": COMPUTE_KIND, "cores": {"min": 8, "max": 4}}}, "cores: min 8 exceeds max 4"),
        ({"schedule": {"requested": {"start": "2001-01-01T00:00Z/PT1H"}}}, "in the past"),
        ({"executable": None}, "no executable"),
        ({"schedule": {"requested": {"duration": "PT0S"}}}, "not positive"),
    ],
)
def test_unservable_requests_are_result_no(broker: Broker, change: dict[str, Any], words: str) -> None:
    body = {"executable": NOTEBOOK, **change}
    doc = broker.ask({k: v for k, v in body.items() if v is not None})
    assert doc["result"] == "NO"
    assert doc["offers"] == []
    assert any(words in m["message"] for m in doc["messages"]), doc["messages"]


def test_yaml_by_default_json_on_request(broker: Broker) -> None:
    raw = yaml.safe_dump({"executable": NOTEBOOK}).encode()
    for accept in (
        "*/*",
        "application/yaml",
        "application/json, application/yaml",
        "application/json;q=0.5, application/yaml",
    ):
        r = broker.post(raw, ctype="application/yaml", headers={**broker.user, "Accept": accept})
        assert r.status_code == 200, accept
        assert r.headers["content-type"].startswith("application/yaml"), accept
        assert yaml.safe_load(r.text)["result"] == "YES"
    r = broker.client.post(
        "/ivoa/requests",
        content=raw,
        headers=dict(broker.user.items()) | {"Content-Type": "application/yaml", "Accept": ""},
    )
    assert r.headers["content-type"].startswith("application/yaml")
    r = broker.post(raw, ctype="application/yaml", headers={**broker.user, "Accept": "application/json"})
    assert r.headers["content-type"].startswith("application/json")
    set_id = r.json()["meta"]["uuid"]
    got = broker.client.get(
        f"/ivoa/offersets/{set_id}", headers={**broker.user, "Accept": "application/json"}
    )
    assert got.headers["content-type"].startswith("application/json")
    assert got.json()["result"] == "YES"
    # the rest of the API keeps JSON as its default
    assert (
        broker.client.get("/v1/leases", headers=broker.user)
        .headers["content-type"]
        .startswith("application/json")
    )


# -- sessions: accept, reject, expire, cancel -------------------------------------------------------------


def test_reject_then_accept_rejects_the_siblings(broker: Broker) -> None:
    doc = broker.ask({"executable": NOTEBOOK, "schedule": {"requested": {"start": f"{iso(broker.t0)}/PT6H"}}})
    assert len(doc["offers"]) >= 3
    ids = [o["meta"]["uuid"] for o in doc["offers"]]
    rejected = broker.update(ids[0], "REJECTED")
    assert rejected["phase"] == "REJECTED"
    assert broker.update(ids[0], "REJECTED")["phase"] == "REJECTED"  # idempotent
    accepted = broker.update(ids[1], "ACCEPTED")
    assert accepted["phase"] == "ACCEPTED"
    assert broker.update(ids[1], "ACCEPTED")["meta"]["uuid"] == ids[1]  # accepting twice changes nothing
    final = broker.get(f"/ivoa/offersets/{doc['meta']['uuid']}")
    phases = [o["phase"] for o in final["offers"]]
    assert phases[0] == "REJECTED"
    assert phases[1] == "WAITING"  # the lease starts tomorrow (PENDING)
    assert all(p == "REJECTED" for p in phases[2:])
    # a sibling cannot be accepted any more
    refused = broker.update(ids[2], "ACCEPTED", expect=409)
    assert refused["result"] == "NO"
    assert refused["session"]["phase"] == "REJECTED"
    assert refused["messages"][0]["level"] == "ERROR"


def test_an_expired_offer_is_expired_and_cannot_be_accepted(broker: Broker) -> None:
    doc = broker.ask(broker.tight(broker.t0))
    uuid = doc["offers"][0]["meta"]["uuid"]
    offers = broker.app.state.services.offers
    later = epoch(doc["meta"]["created"]) + broker.ttl + 1
    offers.clock = lambda: later
    refused = broker.update(uuid, "ACCEPTED", expect=409)
    assert refused["code"] == "offer_expired"
    assert refused["result"] == "NO"
    assert refused["session"]["phase"] == "EXPIRED"
    assert "expired" in refused["messages"][0]["message"]
    assert broker.get(f"/ivoa/sessions/{uuid}")["phase"] == "EXPIRED"
    assert {o["phase"] for o in broker.get(f"/ivoa/offersets/{doc['meta']['uuid']}")["offers"]} == {"EXPIRED"}
    # and its capacity is free again
    assert broker.ask(broker.tight(broker.t0))["result"] == "YES"


def test_reject_frees_capacity(broker: Broker) -> None:
    body = broker.tight(broker.t0)
    first = broker.ask(body)
    assert len(first["offers"]) == 1  # the host, at exactly t0
    assert broker.ask(body)["result"] == "NO"  # held by the offer
    assert broker.update(first["offers"][0]["meta"]["uuid"], "REJECTED")["phase"] == "REJECTED"
    assert len(broker.ask(body)["offers"]) == 1


def test_cancel_an_accepted_session_frees_capacity(broker: Broker) -> None:
    body = broker.tight(broker.t0)
    first = broker.ask(body)
    uuid = first["offers"][0]["meta"]["uuid"]
    assert broker.update(uuid, "ACCEPTED")["phase"] == "ACCEPTED"
    assert broker.get(f"/ivoa/sessions/{uuid}")["phase"] == "WAITING"  # a PENDING lease
    assert broker.ask(body)["result"] == "NO"  # the host is leased
    cancelled = broker.update(uuid, "CANCELLED")
    assert cancelled["phase"] == "CANCELLED"
    assert broker.update(uuid, "CANCELLED")["phase"] == "CANCELLED"  # idempotent
    assert len(broker.ask(body)["offers"]) == 1


def test_update_errors(broker: Broker) -> None:
    doc = broker.ask(broker.tight(broker.t0))
    uuid = doc["offers"][0]["meta"]["uuid"]
    cases = [
        ({"kind": "uri:enum-value-update", "path": "cores", "value": "ACCEPTED"}, "/path"),
        (
            {"kind": "uri:enum-value-update", "path": "phase", "value": "SLEEPING"},
            "/value",
        ),  # no phase at all
        ({"kind": "uri:string-value-update", "path": "phase", "value": "ACCEPTED"}, "/kind"),
        # values of the wrong JSON type are 400s too (schemathesis once turned a list kind into a 500)
        ({"kind": ["uri:enum-value-update"], "path": "phase", "value": "ACCEPTED"}, "/kind"),
        ({"kind": "uri:enum-value-update", "path": "phase", "value": {"phase": "ACCEPTED"}}, "/value"),
    ]
    for body, pointer in cases:
        r = broker.client.post(f"/ivoa/sessions/{uuid}", json=body, headers=broker.user)
        assert r.status_code == 400, r.text
        assert pointer in {e["pointer"] for e in yaml.safe_load(r.text)["errors"]}
    refused = broker.update(uuid, "CANCELLED", expect=409)  # only an accepted session can be cancelled
    assert refused["session"]["phase"] == "OFFERED"
    assert broker.client.get("/ivoa/sessions/not-a-uuid", headers=broker.user).status_code == 404
    unknown = "00000000-0000-4000-8000-000000000000"
    assert broker.client.get(f"/ivoa/sessions/{unknown}", headers=broker.user).status_code == 404
    assert broker.client.get(f"/ivoa/offersets/{unknown}", headers=broker.user).status_code == 404


def test_the_callers_project_owns_offer_sets_and_sessions(broker: Broker) -> None:
    doc = broker.ask(broker.tight(broker.t0))
    set_id, uuid = doc["meta"]["uuid"], doc["offers"][0]["meta"]["uuid"]
    other = _token(broker.app, Role.USER, project="elsewhere")
    assert broker.client.get(f"/ivoa/offersets/{set_id}", headers=other).status_code == 404
    assert broker.client.get(f"/ivoa/sessions/{uuid}", headers=other).status_code == 404
    accept = {"kind": "uri:enum-value-update", "path": "phase", "value": "ACCEPTED"}
    r = broker.client.post(f"/ivoa/sessions/{uuid}", json=accept, headers=other)
    assert r.status_code == 404
    assert broker.get(f"/ivoa/offersets/{set_id}", headers=broker.admin)["meta"]["uuid"] == set_id
    assert broker.client.post("/ivoa/requests", json={"executable": NOTEBOOK}).status_code == 401


# -- units ---------------------------------------------------------------------------------------------------


def test_kind_aliases() -> None:
    legacy = "https://www.purl.org/ivoa.net/EB/schema/v1.0/types/executable/jupyter-notebook-1.0"
    current = f"{CURRENT_BASE}executable/jupyter-notebook.yaml"
    assert canonical_kind(legacy, "executable") == current
    assert canonical_kind(current, "executable") == current
    assert canonical_kind(legacy.replace("v1.0/", "v1.0//"), "executable") is None
    assert canonical_kind(legacy, "compute") is None


def test_phase_mapping() -> None:
    assert session_phase(OfferState.OFFERED) == "OFFERED"
    assert session_phase(OfferState.REJECTED) == "REJECTED"
    assert session_phase(OfferState.EXPIRED) == "EXPIRED"
    expected = {"PENDING": "WAITING", "ACTIVE": "AVAILABLE", "ENDED": "COMPLETED"}
    expected |= {"CANCELLED": "CANCELLED", "ERROR": "FAILED"}
    for lease, phase in expected.items():
        assert session_phase(OfferState.ACCEPTED, lease) == phase
    assert session_phase(OfferState.ACCEPTED, None) == "ACCEPTED"


def test_start_interval_forms() -> None:
    t = epoch("2026-12-01T10:00:00Z")
    assert parse_start_interval("2026-12-01T10:00Z/PT2H") == (t, t + 2 * HOUR)
    assert parse_start_interval("PT2H/2026-12-01T12:00Z") == (t, t + 2 * HOUR)
    assert parse_start_interval("2026-12-01T10:00Z/2026-12-01T12:00Z") == (t, t + 2 * HOUR)
    assert parse_start_interval("2026-12-01/PT1H") == (t - 10 * HOUR, t - 9 * HOUR)  # a date is 00:00 UTC
    assert parse_start_interval("2026-12-01T10:00:00") == (t, t)  # one instant, no offset: UTC


def test_translation_to_find_slot() -> None:
    now = epoch("2026-12-01T09:00:00Z")
    tr = read_request(
        {
            "executable": NOTEBOOK,
            "compute": {"kind": COMPUTE_KIND, "cores": {"min": 5, "max": 15}, "memory": {"min": 3}},
            "schedule": {"requested": {"start": "2026-12-01T10:00Z/PT2H", "duration": "PT1H"}},
        },
        now,
    )
    (component,) = tr.slot["components"]
    assert component["elastic"] == {"VCPU": {"min": 5, "max": 10}}  # capped at twice the minimum
    assert component["resources"] == {"MEMORY_MB": 3 * 1024}  # GiB -> MiB; `largest` may double it
    assert tr.slot["start_within"] == "2026-12-01T10:00:00Z/2026-12-01T12:00:00Z"
    assert tr.slot["duration"] == HOUR
    assert not tr.refusals


@pytest.mark.parametrize("path", ["/ivoa/requests", "/ivoa/offersets", "/ivoa/direct"])
def test_ivoa_searches_run_in_the_find_slot_lane(broker: Broker, path: str) -> None:
    """The search and what it makes, in arrival order with find-slot's (api/find_slot_lane.py)."""
    lane = broker.app.state.find_slot_lane = CountingLane()
    r = broker.post(broker.tight(broker.t0, window="PT2H"), path=path)
    assert r.status_code == 200, r.text
    assert lane.runs == 1


def test_direct_books_the_first_offer_that_holds(broker: Broker) -> None:
    """POST /direct (DirectExecution): no offer round; the answer is the ACCEPTED session, its lease
    holds the host, and the set's other offers are gone."""
    r = broker.post(broker.tight(broker.t0, window="PT2H"), path="/ivoa/direct")
    assert r.status_code == 200, r.text
    session = yaml.safe_load(r.text)
    assert session["phase"] == "ACCEPTED"
    assert r.headers["Location"] == session["meta"]["url"]
    uuid = session["meta"]["uuid"]
    assert broker.get(f"/ivoa/sessions/{uuid}")["phase"] == "WAITING"  # its lease starts tomorrow
    assert broker.ask(broker.tight(broker.t0))["result"] == "NO"  # the host is leased at t0
    # and cancelling it gives the host back, as for any accepted session
    assert broker.update(uuid, "CANCELLED")["phase"] == "CANCELLED"
    assert broker.ask(broker.tight(broker.t0))["result"] == "YES"


def test_direct_that_cannot_be_booked_is_a_failed_session(broker: Broker) -> None:
    body = broker.tight(broker.t0)
    body["compute"]["cores"] = {"min": 10 * HOST_CORES}
    r = broker.post(body, path="/ivoa/direct")
    assert r.status_code == 400, r.text
    session = yaml.safe_load(r.text)
    assert session["phase"] == "FAILED"
    assert any(m["level"] == "ERROR" for m in session["meta"]["messages"])
    assert broker.ask(broker.tight(broker.t0))["result"] == "YES"  # nothing was left held


def test_direct_that_cannot_be_booked_leaves_no_offer_set(broker: Broker, db: Database) -> None:
    """A FAILED /direct writes nothing: no offer set, offer or echo is left to read back (the 400 has no
    Location), whether nothing fitted or every offer made slipped away before it could be accepted."""
    body = broker.tight(broker.t0)
    body["compute"]["cores"] = {"min": 10 * HOST_CORES}
    before = row_counts(db)
    assert broker.post(body, path="/ivoa/direct").status_code == 400
    assert row_counts(db) == before


def test_direct_whose_offers_all_slip_away_leaves_no_offer_set(
    broker: Broker, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    offers = broker.app.state.services.ivoa.offers

    def taken(offer_id: str, **_: Any) -> None:
        raise OfferConflict(f"offer {offer_id} expired", code=OFFER_EXPIRED)

    monkeypatch.setattr(offers, "accept", taken)
    before = row_counts(db)
    r = broker.post(broker.tight(broker.t0, window="PT2H"), path="/ivoa/direct")
    assert r.status_code == 400, r.text
    assert yaml.safe_load(r.text)["phase"] == "FAILED"
    after = row_counts(db)
    for table in ("offer_sets", "offers", "ivoa_offer_sets", "leases"):
        assert after.get(table, 0) == before.get(table, 0), table
    monkeypatch.undo()
    assert broker.ask(broker.tight(broker.t0))["result"] == "YES"  # every hold made was given back


def test_direct_whose_offer_another_request_accepted_keeps_that_lease(
    broker: Broker, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The set's offers are visible under /v1 the moment they are made: when another request accepts one
    before /direct does, /direct fails, and the set (now holding that lease) stays as it is."""
    offers = broker.app.state.services.ivoa.offers
    real_accept = offers.accept
    won: list[str] = []

    def raced(offer_id: str, **kw: Any) -> Any:
        if not won:
            won.append(offer_id)
            real_accept(offer_id, **kw)  # the other request wins
        raise OfferConflict(f"offer {offer_id} is not open", code="offer_not_open")

    monkeypatch.setattr(offers, "accept", raced)
    r = broker.post(broker.tight(broker.t0, window="PT2H"), path="/ivoa/direct")
    assert r.status_code == 400, r.text
    monkeypatch.undo()
    assert broker.get(f"/ivoa/sessions/{won[0]}")["phase"] == "WAITING"  # the other request's lease
