"""Hostile input against a live server, on SQLite and PostgreSQL: nothing a user sends may answer 5xx,
every refusal has its documented status, ``code`` and field pointer, and a refused request leaves the
database exactly as it was (the row count of every table and the calendar generation).

One uvicorn server per backend serves the whole module. It is seeded with a small topology, and
project ``alpha`` owns one of each thing (lease, job, offer set, claim, find-slot job, IVOA offer set)
so that project ``beta`` can probe every id-taking route with ids that exist but are not its own.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from test_schemathesis import _seed

from conftest import PG_URL, require_postgres, reset_postgres
from live_server import serve
from slotbroker.api.app import create_app
from slotbroker.config import Settings
from slotbroker.services.access.tokens import Role, TokenService
from slotbroker.store import migrate
from slotbroker.store.db import Database
from slotbroker.store.models import Base
from slotbroker.store.repositories import CalendarRepository

NOW = datetime.now(UTC).replace(microsecond=0)


def _at(hours: float) -> str:
    return (NOW + timedelta(hours=hours)).isoformat()


@dataclass
class Server:
    url: str
    db: Database
    tokens: dict[str, dict[str, str]]  # role key -> Authorization header
    ids: dict[str, str] = field(default_factory=dict)  # alpha's things, and topology names

    def snapshot(self) -> dict[str, int]:
        """Row count of every table, plus the calendar generation."""
        with self.db.engine.connect() as conn:
            counts = {
                t.name: int(conn.scalar(select(func.count()).select_from(t)) or 0)
                for t in Base.metadata.sorted_tables
            }
        with self.db.session(readonly=True) as session:
            counts["<calendar generation>"] = CalendarRepository(session).generation()
        return counts


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if request.param == "postgres":
        require_postgres()
        reset_postgres()
        url = PG_URL
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('hostile')}/slotbroker.db"
    db = Database(url)
    migrate.upgrade(db.engine)
    settings = Settings(
        database_url=url,
        migrate_on_start=False,
        rate_per_s=10_000,
        rate_burst=10_000,
        event_loop_interval_s=0,
        planner_workers=0,
        provisioners=("simulated", "local"),  # `local` on, as an operator may turn it: users still may not
    )
    app = create_app(settings, db=db)
    tokens = TokenService(db)

    def header(role: Role, project: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens.create(project=project, role=role, name=f'h-{project}')}"}

    roles = {
        "admin": header(Role.ADMIN, "ops"),
        "operator": header(Role.OPERATOR, "ops"),
        "alpha": header(Role.USER, "alpha"),
        "beta": header(Role.USER, "beta"),
    }
    _seed(app, roles["admin"])
    with serve(app) as base:
        srv = Server(base, db, roles)
        _own_one_of_each(srv)
        yield srv
    db.dispose()


def _own_one_of_each(srv: Server) -> None:
    """Alpha's lease, job, offer set, claim, find-slot job and IVOA offer set; topology names."""
    alpha = srv.tokens["alpha"]
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        hosts = c.get("/v1/providers", params={"kind": "host", "limit": 1}, headers=alpha).json()["items"]
        sites = c.get("/v1/providers", params={"kind": "site", "limit": 1}, headers=alpha).json()["items"]
        srv.ids["host"] = hosts[0]["uuid"]
        srv.ids["site"] = sites[0]["name"]
        lease = c.post("/v1/leases", json=_lease(srv), headers=alpha)
        assert lease.status_code == 201, lease.text
        srv.ids["lease"] = lease.json()["id"]
        job = c.post("/v1/jobs", json=_job(srv, workload={"command": ["true"]}), headers=alpha)
        assert job.status_code == 201, job.text
        srv.ids["job"] = job.json()["id"]
        offers = c.post("/v1/offer-sets", json={"request": _find_slot(), "max_offers": 1}, headers=alpha)
        assert offers.status_code == 201, offers.text
        srv.ids["offer_set"] = offers.json()["id"]
        srv.ids["offer"] = offers.json()["offers"][0]["id"]
        claim = c.post("/v1/claims", json=_claim(srv, hours=30), headers=alpha)
        assert claim.status_code == 201, claim.text
        srv.ids["claim"] = claim.json()["uuid"]
        windows = c.post("/v1/find-slot", json=_find_slot(), headers=alpha)
        assert windows.status_code == 200, windows.text
        srv.ids["allocation_request"] = windows.json()["windows"][0]["allocation_request"]
        found = c.post("/v1/find-slot", json=_find_slot(), headers={**alpha, "Prefer": "respond-async"})
        assert found.status_code == 202, found.text
        srv.ids["find_slot_job"] = found.json()["id"]
        ivoa = c.post("/ivoa/offersets", json=_ivoa(), headers={**alpha, "Accept": "application/json"})
        assert ivoa.status_code == 200, ivoa.text
        srv.ids["ivoa_offerset"] = ivoa.json()["meta"]["uuid"]
        srv.ids["ivoa_session"] = ivoa.json()["offers"][0]["meta"]["uuid"]


# -- valid bodies, each spoilt below in one place ----------------------------------------------------


def _lease(srv: Server, hours: float = 24, **more: Any) -> dict[str, Any]:
    items = [{"provider_uuid": srv.ids["host"], "resource_class": "VCPU", "amount": 1}]
    return {"name": "ok", "start": _at(hours), "end": _at(hours + 1), "items": items, **more}


def _claim(srv: Server, hours: float = 40, **more: Any) -> dict[str, Any]:
    items = [{"provider_uuid": srv.ids["host"], "resource_class": "VCPU", "amount": 1}]
    return {"items": items, "start": _at(hours), "end": _at(hours + 1), **more}


def _find_slot(**more: Any) -> dict[str, Any]:
    return {
        "components": [{"name": "vm", "resources": {"VCPU": 1}}],
        "earliest_start": _at(1),
        "latest_end": _at(72),
        "duration": "PT1H",
        "limit": 1,
        **more,
    }


def _ivoa(**more: Any) -> dict[str, Any]:
    return {
        "executable": {
            "kind": "https://www.purl.org/ivoa.net/EB/schema/v1.0/types/executable/jupyter-notebook-1.0",
            "location": "https://example.org/notebook.ipynb",
        },
        **more,
    }


def _fabric(srv: Server, **more: Any) -> dict[str, Any]:
    return {
        "start": _at(1),
        "end": _at(49),
        "duration": 1,
        "max_results": 1,
        "resources": [{"type": "compute", "site": srv.ids["site"], "cores": 1, "ram": 1, "disk": 1}],
        **more,
    }


# -- the table -----------------------------------------------------------------------------------------

ANY_4XX = 0  # expected status: any 4xx


@dataclass(frozen=True)
class Hostile:
    """One refused request. ``body`` is JSON (or bytes, sent as they are); callables take the server."""

    id: str
    method: str
    path: str
    status: int
    code: str | None = None
    pointer: str | None = None  # a JSON pointer the problem's errors[] must name
    who: str = "alpha"
    body: Any = None
    params: dict[str, str] | None = None
    headers: dict[str, str] | None = None
    allow: tuple[str, ...] = ()  # methods a 405's Allow header must list


LEASES, CLAIMS, JOBS, PROVIDERS = "/v1/leases", "/v1/claims", "/v1/jobs", "/v1/providers"
JSON, YAML = {"Content-Type": "application/json"}, {"Content-Type": "application/yaml"}
BAD, INVALID = "malformed_body", "validation_error"
DEEP_JSON = b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}"
DEEP_YAML = b"a: " + b"[" * 5000 + b"]" * 5000
DEEP_BODIES = (
    (CLAIMS, "alpha"),
    (JOBS, "alpha"),
    ("/v1/offer-sets", "alpha"),
    ("/v1/find-slot", "alpha"),
    ("/ivoa/offersets", "alpha"),
    ("/ivoa/requests", "alpha"),
    ("/calendar/find-slot", "alpha"),
    ("/v1/topology", "admin"),
    ("/v1/providers", "admin"),
    ("/v1/links", "admin"),
    ("/v1/facility-ports", "admin"),
    ("/v1/resource-classes", "admin"),
)


def _item(srv: Server, **changes: Any) -> list[dict[str, Any]]:
    return [{"provider_uuid": srv.ids["host"], "resource_class": "VCPU", "amount": 1, **changes}]


def _job(srv: Server, **more: Any) -> dict[str, Any]:
    return {"lease_id": srv.ids["lease"], "provisioner": "simulated", **more}


# Each line spoils one thing of a valid request; the table reads best unwrapped.
# fmt: off
def _cases() -> list[Hostile]:
    h = Hostile
    return [
        # 1. a user may not pick the local provisioner
        h("job-local-provisioner", "POST", JOBS, 403, "forbidden", "/provisioner",
          body=lambda s: _job(s, provisioner="local", workload={"command": ["id"]})),
        # 3. times past any calendar; 4. an offset that overflows the year
        h("claim-end-2600", "POST", CLAIMS, 422, INVALID, "/end",
          body=lambda s: _claim(s) | {"end": "2600-01-01T00:00:00Z"}),
        h("claim-start-year-1", "POST", CLAIMS, 422, INVALID, "/start",
          body=lambda s: _claim(s) | {"start": "0001-01-01T00:00:00Z", "end": "9999-12-31T00:00:00Z"}),
        h("claim-start-9999-offset", "POST", CLAIMS, 422, INVALID, "/start",
          body=lambda s: _claim(s) | {"start": "9999-12-31T23:00:00-23:59"}),
        h("lease-end-2600", "POST", LEASES, ANY_4XX, None, "/end",
          body=lambda s: _lease(s) | {"end": "2600-01-01T00:00:00Z"}),
        h("lease-start-9999-offset", "POST", LEASES, 422, INVALID, "/start",
          body=lambda s: _lease(s) | {"start": "9999-12-31T23:00:00-23:59"}),
        h("lease-patch-end-9999", "PATCH", "/v1/leases/{lease}", ANY_4XX, None, "/end",
          body={"generation": 0, "end": "9999-12-31T23:59:59Z"}),
        h("allocation-candidates-end-9999", "GET", "/v1/allocation-candidates", 422, INVALID, "#/query/end",
          params={"resources": "VCPU:1", "start": _at(1), "end": "9999-12-31T23:59:59+00:00"}),
        h("calendar-end-9999", "GET", "/v1/calendar", ANY_4XX, None, "#/query/end",
          params={"start": _at(1), "end": "9999-12-31T23:59:59-23:59"}),
        h("offer-set-window-9999", "POST", "/v1/offer-sets", ANY_4XX, None, "/request/latest_end",
          body={"request": _find_slot(latest_end="9999-12-31T23:59:59Z", duration="PT1H")}),
        h("find-slot-window-9999", "POST", "/v1/find-slot", ANY_4XX, None, "/latest_end",
          body=_find_slot(latest_end="9999-12-31T23:59:59-23:59")),
        h("ivoa-schedule-9999", "POST", "/ivoa/offersets", ANY_4XX,
          body=_ivoa(schedule={"requested": {"start": ["9999-12-31T23:00:00-23:59/PT1H"]}})),
        h("fabric-end-9999", "POST", "/calendar/find-slot", ANY_4XX, None, "/end",
          body=lambda s: _fabric(s) | {"end": "9999-12-31T23:59:59-23:59"}),
        # 5. too long, or expiring never
        h("claim-13-months", "POST", CLAIMS, 403, "lease_too_long",
          body=lambda s: _claim(s) | {"end": _at(40 + 24 * 396)}),
        h("lease-13-months", "POST", LEASES, 403, "lease_too_long",
          body=lambda s: _lease(s) | {"end": _at(24 + 24 * 396)}),
        h("hold-expires-9999", "POST", CLAIMS, ANY_4XX, None, "/consumer/expires",
          body=lambda s: _claim(s) | {"consumer": {"kind": "hold", "expires": "9999-01-01T00:00:00Z"}}),
        # 6. NUL bytes in bodies, queries, paths and YAML keys
        h("lease-name-nul", "POST", LEASES, 422, INVALID, "/name", body=lambda s: _lease(s, name="a\0b")),
        h("job-name-nul", "POST", JOBS, 422, INVALID, "/name", body=lambda s: _job(s, name="a\0b")),
        h("claim-consumer-name-nul", "POST", CLAIMS, 422, INVALID, "/consumer/name",
          body=lambda s: _claim(s) | {"consumer": {"name": "a\0b"}}),
        h("resource-class-nul", "POST", "/v1/resource-classes", 422, INVALID, "/name", who="admin",
          body={"name": "CUSTOM_A\0B"}),
        h("providers-cursor-nul", "GET", PROVIDERS, 422, INVALID, "#/query/cursor", params={"cursor": "\0x"}),
        h("providers-name-nul", "GET", PROVIDERS, 422, INVALID, "#/query/name", params={"name": "a\0b"}),
        h("leases-cursor-nul", "GET", LEASES, 422, INVALID, "#/query/cursor", params={"cursor": "\0x"}),
        h("jobs-cursor-nul", "GET", JOBS, 422, INVALID, "#/query/cursor", params={"cursor": "\0x"}),
        h("provider-path-nul", "GET", "/v1/providers/a%00b", ANY_4XX),
        h("lease-path-nul", "DELETE", "/v1/leases/a%00b", ANY_4XX),
        h("trait-path-nul", "PUT", "/v1/traits/CUSTOM_A%00B", ANY_4XX, who="admin"),
        h("yaml-key-nul", "POST", LEASES, 422, INVALID, headers=YAML,
          body=lambda s: f'name: ok\n"na\\0me": x\nstart: "{_at(24)}"\n'.encode()),
        # 7. deep documents, JSON and YAML alike
        h("deep-json-lease", "POST", LEASES, 400, body=DEEP_JSON, headers=JSON),
        h("deep-yaml-lease", "POST", LEASES, 400, body=DEEP_YAML, headers=YAML),
        *(h(f"deep-json{p.replace('/', '-')}", "POST", p, 400, who=who, body=DEEP_JSON, headers=JSON)
          for p, who in DEEP_BODIES),
        # bytes that are not what they claim, or too many of them
        h("non-utf8-json", "POST", LEASES, 400, body=b'{"name": "\xff\xfe"}', headers=JSON),
        h("non-utf8-yaml", "POST", LEASES, 400, BAD, body=b"name: \xff\xfe\n", headers=YAML),
        h("truncated-json", "POST", CLAIMS, 400, BAD, body=b'{"items": [', headers=JSON),
        h("wrong-content-type", "POST", LEASES, 415, "unsupported_media_type", body=b"name=ok",
          headers={"Content-Type": "application/x-www-form-urlencoded"}),
        h("oversized-name", "POST", LEASES, 422, INVALID, "/name", body=lambda s: _lease(s, name="x" * 9**6)),
        h("body-over-limit", "POST", CLAIMS, 413, "payload_too_large", body=b" " * (2 << 20), headers=JSON),
        # 9. a component with no resources, pinned to a site
        # 10. unknown parameters, mistyped names, wrong JSON types, counts out of range
        h("unknown-query-param", "GET", PROVIDERS, 422, INVALID, "#/query/site", params={"site": "MICH"}),
        h("unknown-query-param-leases", "GET", LEASES, 422, INVALID, "#/query/sort", params={"sort": "name"}),
        h("mistyped-class", "POST", LEASES, 422, INVALID, "/items/0/resource_class",
          body=lambda s: _lease(s, items=_item(s, resource_class="GPU_A3O"))),
        h("quota-bool-for-int", "PUT", "/v1/quotas/alpha/VCPU", 422, INVALID, "/max_concurrent", who="admin",
          body={"max_concurrent": False}),
        h("quota-float-for-int", "PUT", "/v1/quotas/alpha/VCPU", 422, INVALID, "/max_concurrent", who="admin",
          body={"max_concurrent": 1.5}),
        h("quota-not-a-class", "PUT", "/v1/quotas/alpha/YO", 422, INVALID, "#/path/resource_class",
          who="admin", body={"max_concurrent": 1}),
        h("claim-amount-bool", "POST", CLAIMS, 422, INVALID, "/items/0/amount",
          body=lambda s: _claim(s, items=_item(s, amount=True))),
        h("lease-amount-float", "POST", LEASES, 422, INVALID, "/items/0/amount",
          body=lambda s: _lease(s, items=_item(s, amount=1.5))),
        h("claim-amount-negative", "POST", CLAIMS, 422, INVALID, "/items/0/amount",
          body=lambda s: _claim(s, items=_item(s, amount=-1))),
        h("claim-amount-huge", "POST", CLAIMS, 422, INVALID, "/items/0/amount",
          body=lambda s: _claim(s, items=_item(s, amount=10**30))),
        h("offer-set-max-offers-huge", "POST", "/v1/offer-sets", 422, INVALID, "/max_offers",
          body={"request": _find_slot(), "max_offers": 10**9}),
        h("find-slot-count-huge", "POST", "/v1/find-slot", ANY_4XX, None, "/components/0/count",
          body=_find_slot(components=[{"name": "vm", "count": 10**12, "resources": {"VCPU": 1}}])),
        h("limit-negative", "GET", PROVIDERS, 422, INVALID, "#/query/limit", params={"limit": "-9"}),
        h("job-priority-float", "POST", JOBS, 422, INVALID, "/priority", body=lambda s: _job(s, priority=.5)),
        # too low a role, or none
        h("user-imports-topology", "POST", "/v1/topology", 403, "forbidden", body={"providers": []}),
        h("user-creates-provider", "POST", PROVIDERS, 403, "forbidden", body={"name": "m", "kind": "host"}),
        h("user-sets-quota", "PUT", "/v1/quotas/alpha/VCPU", 403, "forbidden", body={"max_concurrent": 9}),
        h("user-deletes-trait", "DELETE", "/v1/traits/HW_CPU_X86_AVX2", 403, "forbidden"),
        h("operator-deletes-resource-class", "DELETE", "/v1/resource-classes/VCPU", 403, "forbidden",
          who="operator"),
        h("no-token", "POST", LEASES, 401, "unauthorized", who="nobody", body=lambda s: _lease(s)),
        h("forged-token", "POST", LEASES, 401, "unauthorized", who="forged", body=lambda s: _lease(s)),
        # 11. a wrong method names every allowed one
        h("wrong-method-lease", "PUT", "/v1/leases/{lease}", 405, "method_not_allowed", body={},
          allow=("GET", "PATCH", "DELETE")),
        h("wrong-method-provider", "PATCH", "/v1/providers/{host}", 405, "method_not_allowed", body={},
          who="admin", allow=("GET", "PUT", "DELETE")),
    ]
# fmt: on


CASES = _cases()


def _request(srv: Server, case: Hostile) -> httpx.Response:
    headers = {"Accept": "application/json", **srv.tokens.get(case.who, {})}
    if case.who == "forged":
        headers = {"Authorization": "Bearer sb_forged_0000"}
    headers.update(case.headers or {})
    body = case.body(srv) if callable(case.body) else case.body
    kwargs: dict[str, Any] = {"params": case.params, "headers": headers}
    if isinstance(body, bytes):
        kwargs["content"] = body
    elif body is not None:
        kwargs["content"] = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    path = case.path.format(**srv.ids)
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        return c.request(case.method, path, **kwargs)


def _expect(ok: bool, message: str) -> None:
    # pytrace=False: a short report, and no source parsing of a traceback through a failing server.
    if not ok:
        pytest.fail(message, pytrace=False)


def _assert_refused(r: httpx.Response, case: Hostile) -> dict[str, Any]:
    said = f"{case.id}: {r.status_code} {r.text[:500]}"
    _expect(r.status_code < 500, said)
    if case.status == ANY_4XX:
        _expect(400 <= r.status_code < 500, said)
    else:
        _expect(r.status_code == case.status, said)
    _expect(r.headers["content-type"].startswith("application/problem+json"), said)
    problem: dict[str, Any] = r.json()
    _expect(case.code is None or problem["code"] == case.code, f"code {problem['code']!r}: {said}")
    pointers = [e["pointer"] for e in problem.get("errors", [])]
    _expect(case.pointer is None or case.pointer in pointers, f"no {case.pointer} in {pointers}: {said}")
    return problem


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_request_is_refused_cleanly(server: Server, case: Hostile) -> None:
    before = server.snapshot()
    r = _request(server, case)
    problem = _assert_refused(r, case)
    if case.allow:
        assert set(case.allow) <= {m.strip() for m in r.headers.get("allow", "").split(",")}, r.headers
    assert server.snapshot() == before, f"{case.id} wrote behind a {r.status_code}: {problem}"


def test_an_empty_component_pinned_to_a_site_is_answered(server: Server) -> None:
    """Item 9: a component that needs nothing, pinned to a site, once crashed the engine (500); it takes a
    host there and no capacity (docs/engine.md)."""
    body = _find_slot(components=[{"name": "vm", "resources": {}, "site": server.ids["site"]}])
    with httpx.Client(base_url=server.url, timeout=60, headers=server.tokens["alpha"]) as c:
        r = c.post("/v1/find-slot", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["windows"], r.text


def test_deep_yaml_is_refused_like_deep_json(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=60, headers=server.tokens["alpha"]) as c:
        as_json = c.post(LEASES, content=DEEP_JSON, headers=JSON)
        as_yaml = c.post(LEASES, content=DEEP_YAML, headers=YAML)
    assert as_json.status_code == 400, as_json.text
    assert (as_yaml.status_code, as_yaml.json()["code"]) == (400, as_json.json()["code"]), as_yaml.text


QUERY_TEXT = [(PROVIDERS, "name"), (PROVIDERS, "cursor"), (LEASES, "cursor"), (JOBS, "cursor")]


@pytest.mark.parametrize(("path", "param"), QUERY_TEXT, ids=[f"{p}?{q}" for p, q in QUERY_TEXT])
def test_any_text_in_a_query_is_answered_or_refused_by_name(server: Server, path: str, param: str) -> None:
    """Whatever text a query parameter carries (control characters, NUL, any script), the answer is a
    200 or a 422 naming that parameter, never a 5xx."""
    client = httpx.Client(base_url=server.url, timeout=30, headers=server.tokens["alpha"])

    @given(text=st.text(max_size=30))
    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(text: str) -> None:
        r = client.get(path, params={param: text})
        assert r.status_code in (200, 422), f"{text!r}: {r.status_code} {r.text[:300]}"
        if r.status_code == 422:
            assert f"#/query/{param}" in [e["pointer"] for e in r.json()["errors"]], r.text

    with client:
        check()


# -- 2. another project's ids read exactly like unused ids ---------------------------------------------

# (method, path, which of alpha's ids, body); "<id>" in a body stands for the id too.
FOREIGN: list[tuple[str, str, str, dict[str, Any] | None]] = [
    ("GET", "/v1/leases/<id>", "lease", None),
    ("PATCH", "/v1/leases/<id>", "lease", {"generation": 0, "end": _at(26)}),
    ("DELETE", "/v1/leases/<id>", "lease", None),
    ("POST", "/v1/leases/<id>/cancel", "lease", None),
    ("GET", "/v1/jobs/<id>", "job", None),
    ("POST", "/v1/jobs/<id>/cancel", "job", None),
    ("GET", "/v1/jobs/<id>/logs", "job", None),
    ("GET", "/v1/jobs/<id>/events?timeout=0.1", "job", None),
    ("POST", JOBS, "lease", {"lease_id": "<id>", "provisioner": "simulated"}),
    ("GET", "/v1/offer-sets/<id>", "offer_set", None),
    ("GET", "/v1/offers/<id>", "offer", None),
    ("POST", "/v1/offers/<id>/accept", "offer", None),
    ("POST", "/v1/offers/<id>/reject", "offer", None),
    ("DELETE", "/v1/claims/<id>", "claim", None),
    ("POST", CLAIMS, "allocation_request", {"allocation_request": "<id>"}),
    ("GET", "/v1/find-slot/jobs/<id>", "find_slot_job", None),
    ("GET", "/ivoa/offersets/<id>", "ivoa_offerset", None),
    ("GET", "/ivoa/sessions/<id>", "ivoa_session", None),
    (
        "POST",
        "/ivoa/sessions/<id>",
        "ivoa_session",
        {"kind": "uri:enum-value-update", "path": "phase", "value": "ACCEPTED"},
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "name", "body"), FOREIGN, ids=[f"{m} {p} {n}" for m, p, n, _ in FOREIGN]
)
def test_another_projects_id_reads_like_an_unused_one(
    server: Server, method: str, path: str, name: str, body: dict[str, Any] | None
) -> None:
    theirs = server.ids[name]
    unused = str(uuid.uuid4()) if "-" in theirs else theirs[:-4] + "zzzz"
    before = server.snapshot()
    answers = []
    with httpx.Client(base_url=server.url, timeout=30, headers=server.tokens["beta"]) as c:
        for the_id in (theirs, unused):
            sent = None if body is None else json.loads(json.dumps(body).replace("<id>", the_id))
            r = c.request(method, path.replace("<id>", the_id), json=sent)
            assert r.status_code == 404, f"{the_id}: {r.status_code} {r.text}"
            answers.append(r.text.replace(the_id, "<id>"))
    assert answers[0] == answers[1]
    assert server.snapshot() == before


# -- 8. a large topology body does not stall the server --------------------------------------------------


def test_huge_topology_is_refused_while_healthz_answers(server: Server) -> None:
    body = b'{"providers": [' + b"1, " * (5 * (1 << 20) // 3) + b"1]}"
    before = server.snapshot()
    result: dict[str, httpx.Response] = {}

    def post() -> None:
        with httpx.Client(base_url=server.url, timeout=20) as c:  # a refusal takes far less
            result["r"] = c.post(
                "/v1/topology",
                content=body,
                headers={**server.tokens["admin"], "Content-Type": "application/json"},
            )

    thread = threading.Thread(target=post)
    thread.start()
    try:
        with httpx.Client(base_url=server.url, timeout=2) as c:  # a stalled server raises ReadTimeout
            while thread.is_alive():
                assert c.get("/healthz").status_code == 200
                time.sleep(0.05)
    finally:
        thread.join()
    r = result.get("r")
    assert r is not None, "no answer to the topology within 20 s"
    assert 400 <= r.status_code < 500, f"{r.status_code} {r.text[:300]}"
    assert server.snapshot() == before


def test_the_table_covers_every_kind() -> None:
    """The table keeps one case of each kind the issue names, so trimming it cannot go unnoticed."""
    ids = " ".join(c.id for c in CASES)
    for kind in (
        "nul",
        "deep-json",
        "deep-yaml",
        "9999",
        "2600",
        "13-months",
        "bool",
        "float",
        "negative",
        "huge",
        "non-utf8",
        "content-type",
        "unknown-query",
        "mistyped",
        "user-",
        "operator-",
        "token",
    ):
        assert kind in ids, kind
    assert len({c.id for c in CASES}) == len(CASES)
