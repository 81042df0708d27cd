"""What an ExecutionBroker client relies on beyond the happy path (issue 13): content negotiation,
visible exact defaults, NO answers in the request's terms, phase changes (409, ``meta.options``,
``/phase``) and distinct offers. The broker is tests/protocols/test_ivoa.py's one-host testbed."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from test_ivoa import COMPUTE_KIND, HOST_CORES, HOUR, NOTEBOOK, Broker, broker, epoch, iso

from slotbroker.services.protocols.ivoa.present import ivoa_words

__all__ = ["broker"]  # a fixture

UPDATE = "uri:enum-value-update"


def post_raw(b: Broker, body: bytes, **headers: str) -> Any:
    return b.client.post("/ivoa/requests", content=body, headers={**b.user, **headers})


# -- content negotiation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "answer"),
    [
        (None, "application/yaml"),  # a JSON body and no Accept: YAML all the same
        ("*/*", "application/yaml"),
        ("application/json, application/yaml", "application/yaml"),  # a tie goes to YAML
        ("application/yaml;q=0.5, application/json;q=0.9", "application/json"),
        ("application/json;q=0.5, application/yaml;q=0.9", "application/yaml"),
        ("text/html, application/json;q=0.2", "application/json"),
        ("application/json", "application/json"),
        ("text/html", None),  # neither: 406
        ("application/json;q=0, application/yaml;q=0", None),
    ],
)
def test_content_negotiation(broker: Broker, accept: str | None, answer: str | None) -> None:
    headers = {"Accept": accept} if accept is not None else {}
    r = broker.client.post(
        "/ivoa/requests", json={"executable": NOTEBOOK}, headers={**broker.user, **headers}
    )
    if answer is None:
        assert r.status_code == 406, r.text
        assert r.headers["content-type"].startswith("application/problem+json")  # it accepts neither
        assert r.json()["code"] == "not_acceptable"
        return
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(answer), r.headers["content-type"]
    doc = r.json() if answer == "application/json" else yaml.safe_load(r.text)
    assert doc["result"] == "YES"


def test_request_types_and_error_media_types(broker: Broker) -> None:
    body = yaml.safe_dump({"executable": NOTEBOOK}).encode()
    # a YAML body without Content-Type is read as YAML
    r = broker.client.post("/ivoa/requests", content=body, headers=broker.user)
    assert r.status_code == 200, r.text
    assert yaml.safe_load(r.text)["result"] == "YES"
    # types we do not read: 415, in the negotiated format
    for ctype in ("text/plain", "application/xml"):
        r = post_raw(broker, body, **{"Content-Type": ctype})
        assert r.status_code == 415, (ctype, r.text)
        assert r.headers["content-type"].startswith("application/problem+yaml")
        assert yaml.safe_load(r.text)["status"] == 415
    # errors follow the negotiated format
    bad = yaml.safe_dump({"executable": NOTEBOOK, "colour": "blue"}).encode()
    r = post_raw(broker, bad, **{"Content-Type": "application/yaml"})
    assert (r.status_code, r.headers["content-type"].split(";")[0]) == (400, "application/problem+yaml")
    assert yaml.safe_load(r.text)["errors"][0]["pointer"] == "/colour"
    r = post_raw(broker, bad, **{"Content-Type": "application/yaml", "Accept": "application/json"})
    assert (r.status_code, r.headers["content-type"].split(";")[0]) == (400, "application/problem+json")
    r = broker.client.get("/ivoa/sessions/00000000-0000-4000-8000-000000000000", headers=broker.user)
    assert (r.status_code, r.headers["content-type"].split(";")[0]) == (404, "application/problem+yaml")
    r = broker.client.get("/ivoa/sessions/00000000-0000-4000-8000-000000000000")  # no token
    assert (r.status_code, r.headers["content-type"].split(";")[0]) == (401, "application/problem+yaml")
    # the rest of the API is not affected
    r = broker.client.get("/v1/leases", headers={**broker.user, "Accept": "text/html"})
    assert r.status_code == 200


# -- defaults ---------------------------------------------------------------------------------------------


def test_defaults_are_exact_and_each_is_reported(broker: Broker) -> None:
    doc = broker.ask({"executable": NOTEBOOK})
    assert doc["result"] == "YES"
    for offer in doc["offers"]:  # `largest` included: a default it invented is never doubled
        assert offer["compute"]["cores"] == {"min": 1, "max": 1}
        assert offer["compute"]["memory"] == {"min": 1, "max": 1}
    infos = [m["message"] for m in doc["meta"]["messages"] if m["level"] == "INFO"]
    fields = sorted(m.split(":")[0] for m in infos)
    assert fields == [
        "compute.cores",
        "compute.memory",
        "schedule.requested.duration",
        "schedule.requested.start",
    ], infos
    # only cores missing: one INFO for it; the given memory min may still grow
    doc = broker.ask({"executable": NOTEBOOK, "compute": {"kind": COMPUTE_KIND, "memory": {"min": 2}}})
    infos = [m["message"] for m in doc["meta"]["messages"] if m["level"] == "INFO"]
    assert [m for m in infos if m.startswith("compute.")] == [
        "compute.cores: none given, default 1 (exactly)"
    ]
    assert all(o["compute"]["cores"] == {"min": 1, "max": 1} for o in doc["offers"])


# -- NO in the request's terms -------------------------------------------------------------------------------


def test_no_answers_speak_in_the_requests_terms(broker: Broker) -> None:
    too_big = {"kind": COMPUTE_KIND, "cores": {"min": HOST_CORES + 1}, "memory": {"min": 1}}
    doc = broker.ask({"executable": NOTEBOOK, "compute": too_big})
    assert doc["result"] == "NO"
    texts = " ".join(m["message"] for m in doc["messages"])
    assert "compute.cores" in texts, texts
    for internal in ("VCPU", "MEMORY_MB", "component 'compute'"):
        assert internal not in texts, texts
    too_much_memory = {"kind": COMPUTE_KIND, "cores": {"min": 1}, "memory": {"min": 10_000}}
    texts = " ".join(
        m["message"] for m in broker.ask({"executable": NOTEBOOK, "compute": too_much_memory})["messages"]
    )
    assert "compute.memory" in texts
    assert "MEMORY_MB" not in texts


# -- phase changes ----------------------------------------------------------------------------------------


def update(b: Broker, uuid: str, value: str, *, path: str = "phase") -> Any:
    body = {"kind": UPDATE, "path": path, "value": value}
    return b.client.post(
        f"/ivoa/sessions/{uuid}", json=body, headers={**b.user, "Accept": "application/json"}
    )


def options(session: dict[str, Any]) -> list[str]:
    [option] = session["meta"]["options"] or [
        {"kind": "uri:enum-value-option", "path": "phase", "values": []}
    ]
    assert (option["kind"], option["path"]) == ("uri:enum-value-option", "phase")
    return list(option["values"])


def refused(b: Broker, uuid: str, value: str, phase: str, allowed: list[str]) -> None:
    r = update(b, uuid, value)
    assert r.status_code == 409, (value, r.text)
    problem = r.json()
    assert problem["phase"] == phase
    assert problem["allowed"] == allowed
    assert phase in problem["detail"]
    assert problem["session"]["phase"] == phase


def test_phase_changes_and_options(broker: Broker) -> None:
    doc = broker.ask({"executable": NOTEBOOK, "schedule": {"requested": {"start": f"{iso(broker.t0)}/PT6H"}}})
    ids = [o["meta"]["uuid"] for o in doc["offers"]]
    assert len(ids) >= 3
    assert all(options(o) == ["ACCEPTED", "REJECTED"] for o in doc["offers"])
    for service_driven in ("RUNNING", "COMPLETED", "WAITING", "EXPIRED"):
        refused(broker, ids[0], service_driven, "OFFERED", ["ACCEPTED", "REJECTED"])
    refused(broker, ids[0], "CANCELLED", "OFFERED", ["ACCEPTED", "REJECTED"])
    # `/phase` as well as `phase`
    r = update(broker, ids[0], "REJECTED", path="/phase")
    assert r.status_code == 200, r.text
    assert (r.json()["phase"], options(r.json())) == ("REJECTED", [])
    refused(broker, ids[0], "ACCEPTED", "REJECTED", [])  # accept a rejected offer
    refused(broker, ids[0], "CANCELLED", "REJECTED", [])  # cancel a rejected one
    accepted = update(broker, ids[1], "ACCEPTED").json()
    assert options(accepted) == ["CANCELLED"]
    # reject an accepted session (its lease waits)
    refused(broker, ids[1], "REJECTED", "WAITING", ["CANCELLED"])
    refused(broker, ids[1], "COMPLETED", "WAITING", ["CANCELLED"])
    assert options(broker.get(f"/ivoa/sessions/{ids[1]}")) == ["CANCELLED"]
    sibling = broker.get(f"/ivoa/sessions/{ids[2]}")
    assert (sibling["phase"], options(sibling)) == ("REJECTED", [])
    cancelled = update(broker, ids[1], "CANCELLED").json()
    assert (cancelled["phase"], options(cancelled)) == ("CANCELLED", [])
    refused(broker, ids[1], "ACCEPTED", "CANCELLED", [])
    r = update(broker, ids[1], "SLEEPING")  # not a phase at all: unreadable
    assert r.status_code == 400
    assert r.json()["errors"][0]["pointer"] == "/value"
    r = update(broker, ids[1], "CANCELLED", path="/cores")
    assert r.status_code == 400


# -- distinct offers ---------------------------------------------------------------------------------------


def test_offers_in_a_set_are_distinct_and_consecutive_when_tight(broker: Broker) -> None:
    # the whole host: no two offers can overlap, so they follow one another
    doc = broker.ask(broker.tight(broker.t0, window="PT12H", duration="PT2H"))
    starts = [epoch(o["schedule"]["available"]["start"].split("/")[0]) for o in doc["offers"]]
    assert len(starts) == 4
    assert sorted(starts) == [broker.t0 + k * 2 * HOUR for k in range(4)], [iso(s) for s in starts]


def test_offers_in_a_set_never_repeat_a_proposal(broker: Broker) -> None:
    # a small request on a big host: every strategy could propose the same start and amounts
    small = {"kind": COMPUTE_KIND, "cores": {"min": 2, "max": 2}, "memory": {"min": 2, "max": 2}}
    body = {
        "executable": NOTEBOOK,
        "compute": small,
        "schedule": {"requested": {"start": f"{iso(broker.t0)}/PT3H", "duration": "PT1H"}},
    }
    doc = broker.ask(body)
    proposals = [
        (o["schedule"]["available"]["start"], o["compute"]["cores"]["min"], o["compute"]["memory"]["min"])
        for o in doc["offers"]
    ]
    assert len(proposals) == len(set(proposals)) >= 1, proposals
    again = broker.get(f"/ivoa/offersets/{doc['meta']['uuid']}")
    assert [o["meta"]["uuid"] for o in again["offers"]] == [o["meta"]["uuid"] for o in doc["offers"]]


def test_find_slot_words_become_the_requests_words() -> None:
    assert (
        ivoa_words("resources.VCPU: 40 exceeds the quota of 32")
        == "compute.cores: 40 exceeds the quota of 32"
    )
    assert ivoa_words("MEMORY_MB for component 'compute'") == "compute.memory for the compute resource"
    assert ivoa_words("latest_end: must be after the earliest start").startswith("schedule.requested.start:")
    assert ivoa_words("VCPUS stay") == "VCPUS stay"  # whole words only
