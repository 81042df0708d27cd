"""Hostile requests at the HTTP edge (issue 10, items 6, 7, 8, 11): text the stores cannot keep, bodies
nested past the parsers, huge topology documents, and what a 405 says is allowed.

Each refusal must be a 4xx problem naming the field, never a 500, and must leave every table as it was.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect, text

import live_server
from slotbroker.api.app import create_app
from slotbroker.api.problems import MAX_ERRORS, TOO_DEEP, flat_routes
from slotbroker.api.text_guard import body_problems
from slotbroker.config import Settings
from slotbroker.domain.errors import pointer
from slotbroker.services.access.tokens import Role, TokenService
from slotbroker.store.db import Database

H = dict[str, str]
JSON = {"Content-Type": "application/json"}
YAML = {"Content-Type": "application/yaml"}
TOPOLOGY: dict[str, Any] = {
    "providers": [
        {
            "name": "S1",
            "kind": "site",
            "children": [{"name": "h1", "kind": "host", "inventories": {"VCPU": 8}}],
        }
    ]
}


def row_counts(db: Database) -> dict[str, int]:
    with db.engine.connect() as conn:
        return {
            t: conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one()
            for t in inspect(db.engine).get_table_names()
        }


def pointers(r: httpx.Response | httpx2.Response) -> list[str]:  # httpx2: what TestClient answers with
    return [e["pointer"] for e in r.json()["errors"]]


@pytest.fixture
def host(client: TestClient, admin: H) -> str:
    assert client.post("/v1/topology", json=TOPOLOGY, headers=admin).status_code == 200
    found = client.get("/v1/providers", params={"name": "h1", "kind": "host"}, headers=admin).json()
    return str(found["items"][0]["uuid"])


def window() -> dict[str, str]:
    now = datetime.now(UTC)
    return {"start": (now + timedelta(hours=1)).isoformat(), "end": (now + timedelta(hours=2)).isoformat()}


# -- item 6: U+0000 and unpaired surrogates ----------------------------------------------------------------


@pytest.mark.parametrize("bad", ["a\x00b", "a\ud800b"])
@pytest.mark.parametrize("where", ["lease", "job", "claim"])
def test_unstorable_text_in_a_body_is_a_422_that_writes_nothing(
    client: TestClient, db: Database, user: H, host: str, where: str, bad: str
) -> None:
    items = [{"provider_uuid": host, "resource_class": "VCPU", "amount": 1}]
    path, doc = {
        "lease": ("/v1/leases", {"name": bad, "items": items, **window()}),
        "job": (
            "/v1/jobs",
            {
                "name": bad,
                "provisioner": "simulated",
                "workload": {"command": ["true"]},
                "offer_set": {
                    "request": {
                        "components": [{"name": "c", "resources": {"VCPU": 1}}],
                        "earliest_start": window()["start"],
                        "latest_end": (datetime.now(UTC) + timedelta(hours=6)).isoformat(),
                        "duration": "PT1H",
                    }
                },
            },
        ),
        "claim": ("/v1/claims", {"consumer": {"name": bad}, "items": items, **window()}),
    }[where]
    before = row_counts(db)
    for _ in range(2):  # the second claim takes the fast path (its token is cached by then)
        r = client.post(path, content=json.dumps(doc), headers={**user, **JSON})
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "validation_error"
        assert pointers(r) == ["/consumer/name" if where == "claim" else "/name"]
    assert row_counts(db) == before


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("/v1/leases?cursor=%00x", "#/query/cursor"),
        ("/v1/jobs?cursor=%00x", "#/query/cursor"),
        ("/v1/providers?name=a%00b", "#/query/name"),
        ("/v1/providers?kind=host&a%00=1", "#/query"),
        ("/v1/leases/a%00b", "#/path/lease_id"),
        ("/v1/providers/a%00b/traits", "#/path/uuid"),
    ],
)
def test_nul_in_the_query_or_path_is_a_422_naming_it(
    client: TestClient, admin: H, url: str, where: str
) -> None:
    r = client.get(url, headers=admin)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_error"
    assert pointers(r) == [where]


def test_unstorable_text_is_found_at_any_depth_in_json_and_yaml(client: TestClient, admin: H) -> None:
    doc = {"name": "ok", "kind": "region", "x": [{"y": ["fine", "a\x00"]}, {"k\x00": 1}, {"z": "\udfff"}]}
    expected = ["/x/0/y/1", "/x/1", "/x/2/z"]
    r = client.post("/v1/providers", content=json.dumps(doc), headers={**admin, **JSON})
    assert (r.status_code, pointers(r)) == (422, expected)
    yaml_doc = 'name: ok\nkind: region\nx:\n- y: [fine, "a\\0"]\n- {"k\\x00": 1}\n- z: "\\udfff"\n'
    r = client.post("/v1/providers", content=yaml_doc.encode(), headers={**admin, **YAML})
    assert (r.status_code, pointers(r)) == (422, expected)
    assert client.get("/v1/providers", headers=admin).json()["items"] == []


def _reference(value: Any, at: tuple[str | int, ...] = ()) -> list[str]:
    """The pointers ``body_problems`` must give, by plain recursion."""
    if isinstance(value, str):
        return [pointer(*at)] if any(c == "\x00" or 0xD800 <= ord(c) <= 0xDFFF for c in value) else []
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _reference(v, (*at, i))]
    if isinstance(value, dict):
        bad_key = any(_reference(k) for k in value)
        good = [p for k, v in value.items() if not _reference(k) for p in _reference(v, (*at, k))]
        return ([pointer(*at)] if bad_key else []) + good
    return []


TEXT = st.text(
    alphabet=st.sampled_from(["a", "/", "~", "\x00", "\ud800", "\udc00", "é", "\\", '"']), max_size=4
)
DOCS = st.recursive(
    st.none() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(DOCS)
def test_body_problems_names_every_unstorable_string_and_only_those(doc: Any) -> None:
    raw = json.dumps(doc).encode()  # ensure_ascii: NUL and surrogates arrive as escapes, as from clients
    # the reference reads what the server reads: an escaped surrogate pair decodes to one valid character
    assert [p.pointer for p in body_problems(raw)] == sorted(_reference(json.loads(raw)))


# -- item 7: bodies nested past the parsers -----------------------------------------------------------------


@pytest.mark.parametrize("depth", [5000, 40_000])  # the larger is parsed in a worker thread
@pytest.mark.parametrize("path", ["/v1/providers", "/v1/topology", "/v1/claims"])
def test_deep_yaml_and_deep_json_get_the_same_400(
    client: TestClient, admin: H, path: str, depth: int
) -> None:
    deep_yaml = b"a: " + b"[" * depth + b"]" * depth
    deep_json = b'{"a": ' + b"[" * depth + b"]" * depth + b"}"
    answers = []
    for body, ctype in ((deep_yaml, YAML), (deep_json, JSON)):
        r = client.post(path, content=body, headers={**admin, **ctype})
        assert r.status_code == 400, r.text
        answers.append(r.json())
    assert answers[0] == answers[1]
    assert (answers[0]["code"], answers[0]["detail"]) == ("malformed_body", TOO_DEEP)


@pytest.mark.parametrize("yaml_doc", [b"a: !!binary aGVsbG8=", b"a: !!set {x}", b"2024-01-01: x"])
def test_yaml_without_a_json_equivalent_is_a_400(client: TestClient, admin: H, yaml_doc: bytes) -> None:
    r = client.post("/v1/providers", content=yaml_doc, headers={**admin, **YAML})
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "malformed_body"


# -- item 8: huge bodies ------------------------------------------------------------------------------------


def test_a_huge_topology_does_not_stall_the_server(tmp_path: Path) -> None:
    app = live_server.make_app(tmp_path / "huge.db")
    headers = {"Authorization": f"Bearer {live_server.token(app, Role.ADMIN)}", **JSON}
    body = b'{"providers": [' + b",".join([b"1"] * 2_600_000) + b"]}"  # about 5 MiB
    answer: dict[str, Any] = {}
    with live_server.serve(app) as url:

        def post() -> None:
            answer["response"] = httpx.post(url + "/v1/topology", content=body, headers=headers, timeout=60)

        big = threading.Thread(target=post)
        started = time.monotonic()
        big.start()
        slowest = 0.0
        while big.is_alive():
            t0 = time.monotonic()
            assert httpx.get(url + "/healthz", timeout=5).status_code == 200
            slowest = max(slowest, time.monotonic() - t0)
            time.sleep(0.05)
        took = time.monotonic() - started
        big.join()
    assert slowest < 1.0
    r = answer["response"]
    assert r.status_code == 422, r.text[:500]
    assert pointers(r) == ["/providers"]
    assert took < 20


def capped_app(db: Database, cap: int) -> tuple[TestClient, H]:
    settings = Settings(
        database_url=db.url,
        migrate_on_start=False,
        rate_per_s=10_000,
        rate_burst=10_000,
        event_loop_interval_s=0,
        planner_workers=0,
        max_topology_items=cap,
    )
    app = create_app(settings, db=db)
    secret = TokenService(db).create(project="ops", role=Role.ADMIN, name="ops")
    return TestClient(app), {"Authorization": f"Bearer {secret}"}


def test_topology_caps_name_the_list_beyond_them(db: Database) -> None:
    client, admin = capped_app(db, cap=3)
    hosts = [{"name": f"h{i}", "kind": "host"} for i in range(3)]
    tree = {"providers": [{"name": "S1", "kind": "site", "children": hosts}]}  # 4 providers
    wide = {"traits": [f"CUSTOM_T{i}" for i in range(4)]}
    inner = {"providers": [{"name": "S1", "kind": "site", "aggregates": ["a", "b", "c", "d"]}]}
    before = row_counts(db)
    for doc, where in ((tree, "/providers"), (wide, "/traits"), (inner, "/providers/0/aggregates")):
        r = client.post("/v1/topology", json=doc, headers=admin)
        assert r.status_code == 422, r.text
        assert pointers(r) == [where]
    assert row_counts(db) == before
    at_cap = {"providers": [{"name": "S1", "kind": "site", "children": hosts[:2]}], "traits": ["CUSTOM_A"]}
    assert client.post("/v1/topology", json=at_cap, headers=admin).status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "code", "where"),
    [
        (b"", 422, "validation_error", [""]),
        (b"{", 400, "malformed_body", ["/1"]),
        (b"[1]", 422, "validation_error", [""]),
        (b'{"providers": [{"name": "S1"}]}', 422, "validation_error", ["/providers/0/kind"]),
    ],
)
def test_the_topology_route_answers_as_a_declared_body_would(
    client: TestClient, admin: H, body: bytes, status: int, code: str, where: list[str]
) -> None:
    r = client.post("/v1/topology", content=body, headers={**admin, **JSON})
    assert (r.status_code, r.json()["code"], pointers(r)) == (status, code, where)


def test_a_problem_lists_at_most_max_errors(client: TestClient, admin: H) -> None:
    doc = {"name": "r", "kind": "region", "traits": [1] * (3 * MAX_ERRORS)}
    r = client.post("/v1/providers", json=doc, headers=admin)
    assert r.status_code == 422
    assert len(r.json()["errors"]) == MAX_ERRORS
    assert f"{3 * MAX_ERRORS} problems" in r.json()["detail"]


# -- item 11: 405 lists every method of the path ------------------------------------------------------------

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def test_every_405_allows_every_method_of_its_path(app: FastAPI, client: TestClient, admin: H) -> None:
    by_path: dict[str, set[str]] = {}
    for route in flat_routes(app.router.routes):
        by_path.setdefault(route.path, set()).update(route.methods or ())
    checked = 0
    for path, methods in by_path.items():
        refused = next((m for m in METHODS if m not in methods), None)
        if refused is None:
            continue
        url = path.replace("{", "").replace("}", "")  # each parameter filled with its own name
        r = client.request(refused, url, headers=admin)
        if r.status_code != 405:  # the URL also matches another path's route, which answered
            continue
        allowed = {m.strip() for m in r.headers["allow"].split(",")}
        assert methods <= allowed, (path, r.headers["allow"])
        assert refused not in allowed
        # YAML parses JSON too: /ivoa answers problems in YAML when the request did not ask for JSON
        assert yaml.safe_load(r.text)["code"] == "method_not_allowed"
        checked += 1
    assert checked >= 20
    assert client.patch("/v1/providers", headers=admin).headers["allow"] == "GET, POST"
    assert client.post("/v1/leases/x", headers=admin).headers["allow"] == "DELETE, GET, PATCH"


# -- a failing IVOA or FABRIC request writes nothing --------------------------------------------------------

IVOA_TOO_BIG = {
    "executable": {
        "kind": "https://www.purl.org/ivoa.net/EB/schema/v1.0/types/executable/jupyter-notebook-1.0",
        "location": "https://example.org/notebook.ipynb",
    },
    "compute": {
        "kind": "https://www.purl.org/ivoa.net/EB/schema/v1.0/types/compute/simple-compute-resource-1.0",
        "cores": {"min": 9},  # h1 has 8
        "memory": {"min": 1},
    },
    "schedule": {"requested": {"duration": "PT1H"}},
}
SESSION = "00000000-0000-4000-8000-000000000000"
PHASE = {"kind": "uri:enum-value-update", "path": "phase"}


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/ivoa/direct", IVOA_TOO_BIG, 400),  # nothing fits: a FAILED session, and no offer set behind it
        ("/ivoa/direct", {"compute": {"cores": "many"}}, 400),
        ("/ivoa/requests", {"compute": {"cores": "many"}}, 400),
        ("/ivoa/offersets", {"schedule": {"requested": {"start": "yesterday"}}}, 400),
        (f"/ivoa/sessions/{SESSION}", {**PHASE, "value": "X"}, 400),
        (f"/ivoa/sessions/{SESSION}", {**PHASE, "value": "REJECTED"}, 404),
        ("/calendar/find-slot", {"resources": "all"}, 400),
        ("/resources/find-slot", {"start": "soon"}, 400),
    ],
)
def test_a_failing_ivoa_or_fabric_request_writes_nothing(
    client: TestClient, db: Database, user: H, host: str, path: str, body: dict[str, Any], status: int
) -> None:
    before = row_counts(db)
    r = client.post(path, json=body, headers={**user, "Accept": "application/json"})
    assert r.status_code == status, r.text
    if r.json().get("phase") != "FAILED":
        assert r.json()["errors"] or r.json()["code"] == "not_found"
    assert row_counts(db) == before
