"""The claim fast path (``api/claim_fast_path.py``) against the route it stands in for.

The middleware answers ``POST /v1/claims`` itself when it can, and promises to answer only what the route
would have answered. These tests hold it to that: generated bodies (valid, invalid, not even JSON) go to
an app with the fast path and to one without, on the same database (SQLite and PostgreSQL), and the
answers must be byte for byte the same. Around that: which path answered (a counting wrapper around the
fast path's thread-pool hop), metrics labels, tokens not yet cached, 401s, YAML, the switch, and errors
raised inside the claim (two differences found here were fixed: deeply nested JSON, and a bug's 500
re-encoded as YAML).
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import example, given, settings
from hypothesis import strategies as st

from slotbroker.api.app import create_app
from slotbroker.api.claim_fast_path import ClaimFastPath
from slotbroker.api.routers import claims as claims_router
from slotbroker.config import Settings
from slotbroker.services.access.tokens import Role, TokenService
from slotbroker.store.db import Database

H = dict[str, str]
JSON = "application/json"
FRESH = "@fresh-uuid@"  # in a body: a new consumer uuid per send; in an answer: whichever uuid it was
DELETE = "@delete@"
# Both apps see the same "now": problem details quote it, and a hold's default expiry derives from it.
NOW = int(time.time())
START, END = datetime(2031, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, 1, tzinfo=UTC)
START_S, END_S = int(START.timestamp()), int(END.timestamp())
PAST, LATER = "2020-01-01T00:00:00Z", "2031-06-01T00:00:00Z"


def make_app(db: Database, fast: bool) -> FastAPI:
    quiet: dict[str, Any] = {"rate_per_s": 10_000, "rate_burst": 10_000, "event_loop_interval_s": 0}
    settings = Settings(db.url, migrate_on_start=False, planner_workers=0, claim_fast_path=fast, **quiet)
    app = create_app(settings, db=db)
    app.state.services.allocation_requests.clock = lambda: float(NOW)
    return app


def bearer(secret: str) -> H:
    return {"Authorization": f"Bearer {secret}"}


def make_host(client: TestClient, headers: H, name: str = "SITE") -> str:
    site = client.post("/v1/providers", json={"name": name, "kind": "site"}, headers=headers)
    assert site.status_code == 201, site.text
    host = {"name": f"{name}-h0", "kind": "host", "inventories": {"VCPU": 4}}
    r = client.post("/v1/providers", json={**host, "parent_uuid": site.json()["uuid"]}, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["uuid"])


def claim(host: str, *amounts: int, **extra: Any) -> bytes:
    items = [{"provider_uuid": host, "resource_class": "VCPU", "amount": a} for a in amounts or (2,)]
    return json.dumps({"items": items, "start": START.isoformat(), "end": END.isoformat(), **extra}).encode()


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    text: str  # the consumer uuid replaced by FRESH
    location: bool


def send(client: TestClient, headers: H, raw: bytes, ctype: str = JSON, accept: str = JSON) -> Answer:
    """POST ``raw``; a claim that succeeded is released again, so the next send finds the same capacity."""
    fresh = str(uuid.uuid4())
    r = client.post(
        "/v1/claims",
        content=raw.replace(FRESH.encode(), fresh.encode()),
        headers={**headers, "Content-Type": ctype, "Accept": accept},
    )
    text = r.text.replace(fresh, FRESH)
    if r.status_code == 201:
        consumer = str(r.json()["uuid"])
        assert r.headers["location"] == f"/v1/claims/{consumer}"
        assert client.delete(f"/v1/claims/{consumer}", headers=headers).status_code == 204
        text = text.replace(consumer, FRESH)
    return Answer(r.status_code, r.headers.get("content-type", ""), text, "location" in r.headers)


@dataclass
class Pair:
    fast: TestClient
    route: TestClient
    fast_app: FastAPI
    route_app: FastAPI
    headers: H
    host: str


@pytest.fixture
def pair(db: Database) -> Iterator[Pair]:
    """One app with the fast path, one without, on one database; an admin token cached in both."""
    fast_app, route_app = make_app(db, True), make_app(db, False)
    secret = TokenService(db).create(project="demo", role=Role.ADMIN, name="fast-path")
    headers = bearer(secret)
    with (
        TestClient(fast_app, raise_server_exceptions=False) as fast,
        TestClient(route_app, raise_server_exceptions=False) as route,
    ):
        host = make_host(fast, headers)
        assert route.get("/v1/providers", headers=headers).status_code == 200
        for app in (fast_app, route_app):
            assert app.state.services.tokens.cached(secret) is not None
        yield Pair(fast, route, fast_app, route_app, headers, host)


@pytest.fixture
def fast_hits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """One entry per claim the fast path answered: it is the only caller of ``claim_response_async``
    (the route calls ``claim_response``), so an empty list means the route answered."""
    hits: list[str] = []
    real = claims_router.claim_response_async

    async def counting(*args: Any) -> Any:
        hits.append("claim_response")
        return await real(*args)

    monkeypatch.setattr(claims_router, "claim_response_async", counting)
    return hits


# -- equivalence on generated bodies ---------------------------------------------------------------------

# Edits of a valid body, up to two at a time: key -> the values it is set to (DELETE: removed).
CHANGES: dict[str, list[Any]] = {
    "items": [DELETE, [], "VCPU"],
    "start": [DELETE, "2031-01-01T00:00:00", "soon", START_S + 7200],  # naive, garbage, after end
    "end": [DELETE, PAST, START_S, END_S * 1000],  # past, empty, epoch milliseconds
    "allocation_request": ["no-such-request", "x" * 37],
    "consumer": [{"kind": "hold", "expires": PAST}, {"expires": LATER}, []],  # expired, a lease's expiry
    "consumer.kind": ["bogus"],
    "consumer.name": ["n" * 201],
    "consumer.uuid": ["x" * 37, 7],
    "junk": [{"nested": [1, {"deep": None}], "more": [[[]]]}],
    "item.amount": [0, -3, "2", 2.5, 2**53 + 1, None],
    "item.provider_uuid": ["no-such-provider", "x" * 37, 7],
    "item.resource_class": ["MEMORY_MB", "VLAN"],
    "item.vlan_tag": [5, 4095],
    "item.extra": [{"junk": True}],
}
EDITS = [(key, value) for key, values in CHANGES.items() for value in values]
RAW = [b"", b"{", b"not json", b"\xff\xfe\xfd", b"null", b'{"items": [', b'{"start": NaN, "end": Infinity}']
# past Python's int-string limit (json.loads raises ValueError, not JSONDecodeError); a UTF-8 BOM
RAW += [b'{"items": [{"amount": ' + b"1" * 5000 + b"}]}", b'\xef\xbb\xbf{"items": []}']


def edited(base: dict[str, Any], edits: list[tuple[str, Any]]) -> dict[str, Any]:
    body = copy.deepcopy(base)
    for key, value in edits:
        target: Any = body
        if "." in key:  # "item.KEY" edits the first item, "consumer.KEY" the consumer
            where, key = key.split(".")
            parent = body.get("items") if where == "item" else body.setdefault("consumer", {})
            target = parent[0] if isinstance(parent, list) and parent else parent
            if not isinstance(target, dict):
                continue
        if value == DELETE:
            target.pop(key, None)
        else:
            target[key] = value
    return body


def dumps(body: object) -> bytes:
    return json.dumps(body).encode()


def bodies(host: str) -> st.SearchStrategy[bytes]:
    item = st.fixed_dictionaries(
        {"provider_uuid": st.just(host), "resource_class": st.just("VCPU"), "amount": st.integers(1, 5)}
    )
    consumers = st.sampled_from(
        [{"kind": "lease"}, {"kind": "hold"}, {"kind": "hold", "expires": LATER}, {"uuid": FRESH}]
    )
    base = st.fixed_dictionaries(
        {
            "items": st.lists(item, min_size=1, max_size=2),
            "start": st.sampled_from([START.isoformat(), "2031-01-01T02:00:00+02:00", START_S]),
            "end": st.sampled_from(["2031-01-01T01:00:00Z", END_S, "2031-01-02T00:00:00Z"]),
        },
        optional={"consumer": consumers},
    )
    claims = st.builds(edited, base, st.lists(st.sampled_from(EDITS), max_size=2))
    values = st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=5), st.lists(st.integers()))
    encoded = {"claim": claims, "value": values}
    kinds = st.sampled_from(["claim", "claim", "claim", "raw", "value"])
    return kinds.flatmap(lambda k: encoded[k].map(dumps) if k in encoded else st.sampled_from(RAW))


def test_the_fast_path_answers_exactly_what_the_route_answers(pair: Pair, fast_hits: list[str]) -> None:
    answered: dict[int, int] = {}

    @settings(max_examples=60, deadline=None)
    @given(
        raw=bodies(pair.host), ctype=st.sampled_from([JSON, f"{JSON}; charset=utf-8", "application/x+json"])
    )
    @example(raw=claim(pair.host), ctype=JSON)
    @example(raw=claim(pair.host, 3, 3), ctype=JSON)  # over capacity
    @example(raw=claim("no-such-provider"), ctype=JSON)
    @example(raw=claim(pair.host, 0), ctype=JSON)
    @example(raw=b'{"allocation_request": "no-such-request"}', ctype=JSON)
    @example(raw=b"[1, 2]", ctype=JSON)
    def check(raw: bytes, ctype: str) -> None:
        before = len(fast_hits)
        fast = send(pair.fast, pair.headers, raw, ctype)
        route = send(pair.route, pair.headers, raw, ctype)
        assert fast == route, raw
        if len(fast_hits) > before:
            answered[fast.status] = answered.get(fast.status, 0) + 1

    check()
    # The comparison meant something: the fast path itself answered claims, refusals and unknown ids.
    assert {201, 404, 409, 422} <= set(answered), answered


# -- which path, metrics, tokens -------------------------------------------------------------------------


def requests_total(client: TestClient, status: int) -> float:
    prefix = f'slotbroker_http_requests_total{{method="POST",route="/v1/claims",status="{status}"}} '
    lines = [line for line in client.get("/metrics").text.splitlines() if line.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0


def test_fast_path_answers_are_counted_under_the_route_label(pair: Pair, fast_hits: list[str]) -> None:
    created, invalid = requests_total(pair.fast, 201), requests_total(pair.fast, 422)
    assert send(pair.fast, pair.headers, claim(pair.host)).status == 201
    assert send(pair.fast, pair.headers, claim("nope")).status == 422
    assert fast_hits == ["claim_response", "claim_response"]
    assert requests_total(pair.fast, 201) == created + 1
    assert requests_total(pair.fast, 422) == invalid + 1
    assert 'route="unmatched"' not in pair.fast.get("/metrics").text


def test_an_uncached_token_goes_through_the_route_then_takes_the_fast_path(
    pair: Pair, db: Database, fast_hits: list[str]
) -> None:
    secret = TokenService(db).create(project="demo", role=Role.USER, name="not-yet-seen")
    tokens = pair.fast_app.state.services.tokens
    assert tokens.cached(secret) is None
    raw = claim(pair.host)
    assert send(pair.fast, bearer(secret), raw).status == 201
    assert fast_hits == []  # the route answered, and verified the token on the way
    who = tokens.cached(secret)
    assert who is not None
    assert (who.project, who.role) == ("demo", Role.USER)
    assert send(pair.fast, bearer(secret), raw).status == 201
    assert fast_hits == ["claim_response"]


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("sb_not-a-token"), bearer(""), {"Authorization": "Basic YTpi"}, {"Authorization": "sb_x"}],
)
def test_a_bad_or_absent_token_gets_the_same_401(pair: Pair, fast_hits: list[str], headers: H) -> None:
    raw = claim(pair.host)
    answers = []
    for client in (pair.fast, pair.route):
        r = client.post("/v1/claims", content=raw, headers={**headers, "Content-Type": JSON})
        assert r.status_code == 401
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "unauthorized"
        answers.append((r.text, r.headers.get("www-authenticate")))
    assert answers[0] == answers[1]
    assert fast_hits == []


# -- YAML, the switch ------------------------------------------------------------------------------------


def test_a_yaml_claim_takes_the_fast_path_and_answers_in_yaml(pair: Pair, fast_hits: list[str]) -> None:
    doc = (
        f"items:\n- provider_uuid: {pair.host}\n  resource_class: VCPU\n  amount: 3\n"
        "start: 2031-01-01T00:00:00Z\nend: 2031-01-01T01:00:00Z\nconsumer:\n  kind: hold\n  name: y\n"
    )
    headers = {**pair.headers, "Content-Type": "application/yaml", "Accept": "application/yaml"}
    r = pair.fast.post("/v1/claims", content=doc.encode(), headers=headers)
    assert r.status_code == 201, r.text
    assert r.headers["content-type"] == "application/yaml"
    assert fast_hits == ["claim_response"]  # YAML is JSON by the time the fast path sees it
    answer = yaml.safe_load(r.text)
    assert r.headers["location"] == f"/v1/claims/{answer['uuid']}"
    assert pair.fast.delete(f"/v1/claims/{answer['uuid']}", headers=pair.headers).status_code == 204
    as_json = send(pair.fast, pair.headers, claim(pair.host, 3, consumer={"kind": "hold", "name": "y"}))
    assert as_json.status == 201
    expected = json.loads(as_json.text)
    assert set(answer) == set(expected)
    assert {**answer, "uuid": FRESH} == expected
    assert answer["kind"] == "hold"
    assert answer["allocations"][0]["amount"] == 3


def middleware(app: FastAPI) -> list[object]:
    return [m.cls for m in app.user_middleware]


def test_switched_off_the_middleware_is_absent_and_claims_still_work(
    db: Database, fast_hits: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLOTBROKER_CLAIM_FAST_PATH", "0")
    assert Settings().claim_fast_path is False
    off = make_app(db, fast=Settings().claim_fast_path)
    assert ClaimFastPath not in middleware(off)
    assert ClaimFastPath in middleware(make_app(db, fast=True))
    headers = bearer(TokenService(db).create(project="demo", role=Role.ADMIN, name="off"))
    with TestClient(off) as client:
        host = make_host(client, headers, "OFF")
        assert off.state.services.tokens.cached(headers["Authorization"][7:]) is not None
        assert send(client, headers, claim(host)).status == 201
    assert fast_hits == []


# -- errors raised inside the claim ----------------------------------------------------------------------


def test_a_domain_error_maps_like_the_route_handler(pair: Pair, fast_hits: list[str]) -> None:
    raw = claim("no-such-provider")
    fast, route = send(pair.fast, pair.headers, raw), send(pair.route, pair.headers, raw)
    assert fast_hits == ["claim_response"]  # raised inside the fast path, mapped by the middleware
    assert fast == route
    assert fast.status == 422
    assert fast.content_type == "application/problem+json"
    problem = json.loads(fast.text)
    assert problem["code"] == "validation_error"
    assert problem["instance"] == "/v1/claims"
    assert [e["pointer"] for e in problem["errors"]] == ["/items/0/provider_uuid"]


@pytest.mark.parametrize("accept", [JSON, "application/yaml"])
def test_an_unexpected_error_answers_like_the_route(pair: Pair, fast_hits: list[str], accept: str) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    async def broken_async(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    for app in (pair.fast_app, pair.route_app):
        app.state.services.allocation_requests.claim_items = broken
        app.state.services.allocation_requests.claim_items_async = broken_async
    raw = claim(pair.host)
    fast = send(pair.fast, pair.headers, raw, accept=accept)
    route = send(pair.route, pair.headers, raw, accept=accept)
    assert fast_hits == ["claim_response"]
    assert route.status == 500
    assert fast == route


def test_deeply_nested_json_answers_like_the_route(pair: Pair) -> None:
    """json.loads raises RecursionError (not a ValueError) on deep nesting: the route's 400, not a 500."""
    raw = b'{"items": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    assert send(pair.fast, pair.headers, raw) == send(pair.route, pair.headers, raw)
