"""The find-slot fast path (``api/find_slot_fast_path.py``) against the route it stands in for.

Generated bodies (valid requests, edited ones, other JSON values, not JSON at all) go to an app with the
fast path and to one without, on the same database, and the answers must be byte for byte the same
(sealed allocation request ids included: one key in the database, one clock). Around that: which path
answered, the metrics label, tokens not yet cached, query parameters, jobs, YAML, the switch, errors.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import example, given, settings
from hypothesis import strategies as st

from live_server import poll_job
from slotbroker.api.app import create_app
from slotbroker.api.find_slot_fast_path import FindSlotFastPath
from slotbroker.config import Settings
from slotbroker.services.access.tokens import Role, TokenService
from slotbroker.store.db import Database

H = dict[str, str]
JSON = "application/json"
NOW = int(time.time())
DELETE = "@delete@"
REQUEST: dict[str, Any] = {
    "components": [{"name": "a", "resources": {"VCPU": 2}}, {"name": "b", "resources": {"VCPU": 3}}],
    "earliest_start": "2031-01-01T00:00:00Z",
    "latest_end": "2031-01-02T00:00:00Z",
    "duration": "PT2H",
    "limit": 2,
}


def make_app(db: Database, fast: bool) -> FastAPI:
    quiet: dict[str, Any] = {"rate_per_s": 10_000, "rate_burst": 10_000, "event_loop_interval_s": 0}
    settings = Settings(db.url, migrate_on_start=False, planner_workers=0, find_slot_fast_path=fast, **quiet)
    app = create_app(settings, db=db)
    app.state.services.allocation_requests.clock = lambda: float(NOW)  # sealed ids carry their expiry
    return app


def bearer(secret: str) -> H:
    return {"Authorization": f"Bearer {secret}"}


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    text: str


def send(client: TestClient, headers: H, raw: bytes, ctype: str = JSON, accept: str = JSON) -> Answer:
    headers = {**headers, "Content-Type": ctype, "Accept": accept}
    r = client.post("/v1/find-slot", content=raw, headers=headers)
    return Answer(r.status_code, r.headers.get("content-type", ""), r.text)


@dataclass
class Pair:
    fast: TestClient
    route: TestClient
    fast_app: FastAPI
    route_app: FastAPI
    headers: H


@pytest.fixture
def pair(db: Database) -> Iterator[Pair]:
    """One app with the fast path, one without, on one database (a site of two hosts); a cached token."""
    fast_app, route_app = make_app(db, True), make_app(db, False)
    headers = bearer(TokenService(db).create(project="demo", role=Role.ADMIN, name="fast-path"))
    with (
        TestClient(fast_app, raise_server_exceptions=False) as fast,
        TestClient(route_app, raise_server_exceptions=False) as route,
    ):
        site = fast.post("/v1/providers", json={"name": "SITE", "kind": "site"}, headers=headers)
        assert site.status_code == 201, site.text
        for i in range(2):
            host = {"name": f"SITE-h{i}", "kind": "host", "inventories": {"VCPU": 4}}
            r = fast.post("/v1/providers", json={**host, "parent_uuid": site.json()["uuid"]}, headers=headers)
            assert r.status_code == 201, r.text
        assert route.get("/v1/providers", headers=headers).status_code == 200  # caches the token there too
        yield Pair(fast, route, fast_app, route_app, headers)


@pytest.fixture
def fast_hits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """One entry per request the fast path answered itself (both paths search in the app's find-slot
    lane, so the count is taken at the fast path's own ``answer``): an empty list means the route did."""
    hits: list[str] = []
    real = FindSlotFastPath.answer

    async def counting(self: FindSlotFastPath, *args: Any, **kwargs: Any) -> Any:
        hits.append("answer")
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(FindSlotFastPath, "answer", counting)
    return hits


# -- equivalence on generated bodies ---------------------------------------------------------------------

CHANGES: dict[str, list[Any]] = {
    "components": [DELETE, [], "a", [{"name": "a"}]],
    "earliest_start": [DELETE, "2031-01-01T00:00:00", "soon", "2020-01-01T00:00:00Z", 1924992000],
    "latest_end": ["2031-01-01T01:00:00Z", "2020-06-01T00:00:00Z", None],
    "duration": [DELETE, "PT0S", "P400D", "two hours", 7200, "PT30M"],
    "limit": [0, -1, 1000, "2"],
    "groups": [[{"kind": "same_site", "components": ["a", "b"]}], [{"kind": "nope", "components": []}]],
    "junk": [{"nested": [1, {"deep": None}]}],
    "first.resources": [{"VCPU": 5}, {"GPU_NONE": 1}, {"VCPU": -1}, {}, {"VCPU": 2.5}],
    "first.site": ["SITE", "NO-SUCH-SITE"],
    "first.host": ["SITE-h1", "NO-SUCH-HOST"],
    "first.count": [2, 0, 3],
}
EDITS = [(key, value) for key, values in CHANGES.items() for value in values]
RAW = [b"", b"{", b"not json", b"\xff\xfe", b"null", b"[1, 2]", b'"x"', b'{"components": NaN}']
RAW += [b'{"limit": ' + b"1" * 5000 + b"}", b'\xef\xbb\xbf{"components": []}']


def edited(edits: list[tuple[str, Any]]) -> dict[str, Any]:
    body = copy.deepcopy(REQUEST)
    for key, value in edits:
        target: Any = body
        if key.startswith("first."):
            key, target = key.removeprefix("first."), body.get("components")
            if not (isinstance(target, list) and target and isinstance(target[0], dict)):
                continue
            target = target[0]
        if value == DELETE:
            target.pop(key, None)
        else:
            target[key] = value
    return body


def dumps(body: object) -> bytes:
    return json.dumps(body).encode()


BODIES = st.one_of(
    st.lists(st.sampled_from(EDITS), max_size=2).map(edited).map(dumps),
    st.sampled_from(RAW),
    st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers())).map(dumps),
)


def test_the_fast_path_answers_exactly_what_the_route_answers(pair: Pair, fast_hits: list[str]) -> None:
    answered: dict[int, int] = {}

    @settings(max_examples=50, deadline=None)
    @given(raw=BODIES, ctype=st.sampled_from([JSON, f"{JSON}; charset=utf-8", "application/x+json"]))
    @example(raw=dumps(REQUEST), ctype=JSON)
    @example(raw=dumps(edited([("first.resources", {"VCPU": 5})])), ctype=JSON)  # fits nowhere
    @example(raw=dumps(edited([("first.site", "NO-SUCH-SITE")])), ctype=JSON)
    @example(raw=b"[1, 2]", ctype=JSON)
    def check(raw: bytes, ctype: str) -> None:
        before = len(fast_hits)
        fast = send(pair.fast, pair.headers, raw, ctype)
        route = send(pair.route, pair.headers, raw, ctype)
        assert fast == route, raw
        if len(fast_hits) > before:
            answered[fast.status] = answered.get(fast.status, 0) + 1

    check()
    # The comparison meant something: the fast path itself answered windows and refusals.
    assert {200, 422} <= set(answered), answered
    window = json.loads(send(pair.fast, pair.headers, dumps(REQUEST)).text)["windows"][0]
    assert window["allocation_request"]  # sealed ids were part of what was compared


# -- which path, metrics, tokens, query parameters, jobs -----------------------------------------------


def requests_total(client: TestClient, status: int) -> float:
    prefix = f'slotbroker_http_requests_total{{method="POST",route="/v1/find-slot",status="{status}"}} '
    lines = [line for line in client.get("/metrics").text.splitlines() if line.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0


def test_fast_path_answers_are_counted_under_the_route_label(pair: Pair, fast_hits: list[str]) -> None:
    ok, invalid = requests_total(pair.fast, 200), requests_total(pair.fast, 422)
    assert send(pair.fast, pair.headers, dumps(REQUEST)).status == 200
    assert send(pair.fast, pair.headers, dumps(edited([("components", [])]))).status == 422
    assert fast_hits == ["answer", "answer"]
    assert requests_total(pair.fast, 200) == ok + 1
    assert requests_total(pair.fast, 422) == invalid + 1
    assert 'route="unmatched"' not in pair.fast.get("/metrics").text


def test_an_uncached_token_goes_through_the_route_then_takes_the_fast_path(
    pair: Pair, db: Database, fast_hits: list[str]
) -> None:
    secret = TokenService(db).create(project="demo", role=Role.USER, name="not-yet-seen")
    assert pair.fast_app.state.services.tokens.cached(secret) is None
    assert send(pair.fast, bearer(secret), dumps(REQUEST)).status == 200
    assert fast_hits == []
    assert send(pair.fast, bearer(secret), dumps(REQUEST)).status == 200
    assert fast_hits == ["answer"]


@pytest.mark.parametrize("headers", [{}, bearer("sb_not-a-token"), {"Authorization": "Basic YTpi"}])
def test_a_bad_or_absent_token_gets_the_same_401(pair: Pair, fast_hits: list[str], headers: H) -> None:
    fast, route = (send(c, headers, dumps(REQUEST)) for c in (pair.fast, pair.route))
    assert fast == route
    assert fast.status == 401
    assert fast_hits == []


def test_query_parameters_go_to_the_route(pair: Pair, fast_hits: list[str]) -> None:
    headers = {**pair.headers, "Content-Type": JSON}
    r = pair.fast.post("/v1/find-slot?limit=3", content=dumps(REQUEST), headers=headers)
    assert r.status_code == 422
    assert r.json()["errors"][0]["pointer"] == "#/query/limit"
    assert fast_hits == []


def test_prefer_respond_async_makes_a_job_on_both_paths(pair: Pair, fast_hits: list[str]) -> None:
    answers = []
    for client in (pair.fast, pair.route):
        headers = {**pair.headers, "Content-Type": JSON, "Prefer": "Respond-Async, wait=0"}
        r = client.post("/v1/find-slot", content=dumps(REQUEST), headers=headers)
        assert r.status_code == 202, r.text
        job = r.json()
        assert r.headers["location"] == f"/v1/find-slot/jobs/{job['id']}"
        assert r.headers["retry-after"] == "1"
        assert job["status"] in ("pending", "running", "done")  # the job thread may have started already
        assert (job["finished_at"] is None) == (job["status"] != "done")
        done = poll_job(client, r.headers["location"], pair.headers)
        assert done["status"] == "done", done
        answers.append({k: v for k, v in done.items() if k not in ("id", "created_at", "finished_at")})
    assert answers[0] == answers[1]  # the same answer, whichever path made the job and however fast it ran
    assert fast_hits == ["answer"]


def test_a_yaml_request_takes_the_fast_path_and_answers_in_yaml(pair: Pair, fast_hits: list[str]) -> None:
    headers = {**pair.headers, "Content-Type": "application/yaml", "Accept": "application/yaml"}
    r = pair.fast.post("/v1/find-slot", content=yaml.safe_dump(REQUEST).encode(), headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/yaml"
    assert fast_hits == ["answer"]  # YAML is JSON by the time the fast path sees it
    as_json = json.loads(send(pair.route, pair.headers, dumps(REQUEST)).text)
    assert yaml.safe_load(r.text) == yaml.safe_load(yaml.safe_dump(as_json))


def middleware(app: FastAPI) -> list[object]:
    return [m.cls for m in app.user_middleware]


def test_switched_off_the_middleware_is_absent(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLOTBROKER_FIND_SLOT_FAST_PATH", "0")
    assert Settings().find_slot_fast_path is False
    assert FindSlotFastPath not in middleware(make_app(db, fast=False))
    assert FindSlotFastPath in middleware(make_app(db, fast=True))


@pytest.mark.parametrize("accept", [JSON, "application/yaml"])
def test_an_unexpected_error_answers_like_the_route(pair: Pair, fast_hits: list[str], accept: str) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    for app in (pair.fast_app, pair.route_app):
        app.state.services.find_slot.answer = broken
    fast = send(pair.fast, pair.headers, dumps(REQUEST), accept=accept)
    route = send(pair.route, pair.headers, dumps(REQUEST), accept=accept)
    assert fast_hits == ["answer"]
    assert route.status == 500
    assert fast == route


def test_deeply_nested_json_answers_like_the_route(pair: Pair, fast_hits: list[str]) -> None:
    raw = b'{"components": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    fast, route = send(pair.fast, pair.headers, raw), send(pair.route, pair.headers, raw)
    assert fast == route
    assert fast.status == 400
    assert fast_hits == []
