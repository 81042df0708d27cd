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
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from conftest import PG_URL, require_postgres, reset_postgres
from live_server import serve
from slotbroker.api.app import create_app
from slotbroker.config import Settings
from slotbroker.services.tokens import Role, TokenService
from slotbroker.store import migrate
from slotbroker.store.db import Database
from slotbroker.store.models import Base
from slotbroker.store.repositories import CalendarRepository
from test_schemathesis import _seed

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
        _own_one_of_each(srv, app)
        yield srv
    db.dispose()


def _own_one_of_each(srv: Server, app: FastAPI) -> None:
    """Alpha's lease, job, offer set, claim, find-slot job and IVOA offer set; topology names."""
    del app
    alpha = srv.tokens["alpha"]
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        hosts = c.get("/v1/providers", params={"kind": "host", "limit": 2}, headers=alpha).json()["items"]
        sites = c.get("/v1/providers", params={"kind": "site", "limit": 1}, headers=alpha).json()["items"]
        srv.ids["host"], srv.ids["host2"] = hosts[0]["uuid"], hosts[1]["uuid"]
        srv.ids["site"] = sites[0]["name"]
        lease = c.post("/v1/leases", json=_lease(srv), headers=alpha)
        assert lease.status_code == 201, lease.text
        srv.ids["lease"] = lease.json()["id"]
        job = c.post(
            "/v1/jobs",
            json={
                "lease_id": srv.ids["lease"],
                "provisioner": "simulated",
                "workload": {"command": ["true"]},
            },
            headers=alpha,
        )
        assert job.status_code == 201, job.text
        srv.ids["job"] = job.json()["id"]
        offers = c.post("/v1/offer-sets", json={"request": _find_slot(), "max_offers": 1}, headers=alpha)
        assert offers.status_code == 201, offers.text
        srv.ids["offer_set"] = offers.json()["id"]
        srv.ids["offer"] = offers.json()["offers"][0]["id"]
        claim = c.post("/v1/claims", json=_claim(srv, hours=30), headers=alpha)
        assert claim.status_code == 201, claim.text
        srv.ids["claim"] = claim.json()["uuid"]
        found = c.post("/v1/find-slot", json=_find_slot(), headers={**alpha, "Prefer": "respond-async"})
        assert found.status_code == 202, found.text
        srv.ids["find_slot_job"] = found.json()["id"]
        ivoa = c.post("/ivoa/offersets", json=_ivoa(), headers={**alpha, "Accept": "application/json"})
        assert ivoa.status_code == 200, ivoa.text
        srv.ids["ivoa_offerset"] = ivoa.json()["meta"]["uuid"]
        if ivoa.json()["offers"]:
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


def _deep_json(depth: int) -> bytes:
    return b'{"a": ' + b"[" * depth + b"]" * depth + b"}"


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


LEASES, CLAIMS = "/v1/leases", "/v1/claims"


def _cases() -> list[Hostile]:
    cases: list[Hostile] = []
    add = cases.append
    # 1. a user may not pick the local provisioner
    add(
        Hostile(
            "job-local-provisioner",
            "POST",
            "/v1/jobs",
            403,
            "forbidden",
            "/provisioner",
            body=lambda s: {
                "lease_id": s.ids["lease"],
                "provisioner": "local",
                "workload": {"command": ["id"]},
            },
        )
    )
    # 3. times past any calendar
    add(
        Hostile(
            "claim-end-2600",
            "POST",
            CLAIMS,
            422,
            "validation_error",
            "/end",
            body=lambda s: _claim(s) | {"end": "2600-01-01T00:00:00Z"},
        )
    )
    add(
        Hostile(
            "claim-start-year-1",
            "POST",
            CLAIMS,
            422,
            "validation_error",
            "/start",
            body=lambda s: _claim(s) | {"start": "0001-01-01T00:00:00Z", "end": "9999-12-31T00:00:00Z"},
        )
    )
    # 4. an offset that overflows the year
    add(
        Hostile(
            "claim-start-9999-offset",
            "POST",
            CLAIMS,
            422,
            "validation_error",
            "/start",
            body=lambda s: _claim(s) | {"start": "9999-12-31T23:00:00-23:59"},
        )
    )
    # 5. too long, expiring never
    add(
        Hostile(
            "claim-13-months",
            "POST",
            CLAIMS,
            403,
            "lease_too_long",
            body=lambda s: _claim(s) | {"end": _at(40 + 24 * 396)},
        )
    )
    add(
        Hostile(
            "hold-expires-9999",
            "POST",
            CLAIMS,
            ANY_4XX,
            None,
            "/consumer/expires",
            body=lambda s: _claim(s) | {"consumer": {"kind": "hold", "expires": "9999-01-01T00:00:00Z"}},
        )
    )
    add(
        Hostile(
            "lease-13-months",
            "POST",
            LEASES,
            403,
            "lease_too_long",
            body=lambda s: _lease(s) | {"end": _at(24 + 24 * 396)},
        )
    )
    add(
        Hostile(
            "lease-end-2600",
            "POST",
            LEASES,
            ANY_4XX,
            None,
            "/end",
            body=lambda s: _lease(s) | {"end": "2600-01-01T00:00:00Z"},
        )
    )
    add(
        Hostile(
            "lease-start-offset-overflow",
            "POST",
            LEASES,
            422,
            "validation_error",
            "/start",
            body=lambda s: _lease(s) | {"start": "9999-12-31T23:00:00-23:59"},
        )
    )
    add(
        Hostile(
            "lease-patch-end-9999",
            "PATCH",
            "/v1/leases/{lease}",
            ANY_4XX,
            None,
            "/end",
            body={"generation": 0, "end": "9999-12-31T23:59:59Z"},
        )
    )
    add(
        Hostile(
            "allocation-candidates-end-9999",
            "GET",
            "/v1/allocation-candidates",
            422,
            "validation_error",
            "#/query/end",
            params={
                "resources": "VCPU:1",
                "start": "2026-01-01T00:00:00Z",
                "end": "9999-12-31T23:59:59+00:00",
            },
        )
    )
    add(
        Hostile(
            "offer-set-window-year-9999",
            "POST",
            "/v1/offer-sets",
            ANY_4XX,
            None,
            "/request/latest_end",
            body={"request": _find_slot(latest_end="9999-12-31T23:59:59Z", duration="P3000Y")},
        )
    )
    add(
        Hostile(
            "ivoa-schedule-year-9999",
            "POST",
            "/ivoa/offersets",
            ANY_4XX,
            body=_ivoa(schedule={"requested": {"start": ["9999-12-31T23:00:00-23:59/PT1H"]}}),
        )
    )
    add(
        Hostile(
            "fabric-end-9999",
            "POST",
            "/calendar/find-slot",
            ANY_4XX,
            None,
            "/end",
            body=lambda s: _fabric(s) | {"end": "9999-12-31T23:59:59-23:59"},
        )
    )
    # 6. NUL bytes
    add(
        Hostile(
            "lease-name-nul",
            "POST",
            LEASES,
            422,
            "validation_error",
            "/name",
            body=lambda s: _lease(s, name="a\u0000b"),
        )
    )
    add(
        Hostile(
            "job-name-nul",
            "POST",
            "/v1/jobs",
            422,
            "validation_error",
            "/name",
            body=lambda s: {"lease_id": s.ids["lease"], "provisioner": "simulated", "name": "a\u0000b"},
        )
    )
    add(
        Hostile(
            "claim-consumer-name-nul",
            "POST",
            CLAIMS,
            422,
            "validation_error",
            "/consumer/name",
            body=lambda s: _claim(s) | {"consumer": {"name": "a\u0000b"}},
        )
    )
    add(
        Hostile(
            "providers-cursor-nul",
            "GET",
            "/v1/providers",
            422,
            "validation_error",
            "#/query/cursor",
            params={"cursor": "\u0000x"},
        )
    )
    add(
        Hostile(
            "providers-name-nul",
            "GET",
            "/v1/providers",
            422,
            "validation_error",
            "#/query/name",
            params={"name": "a\u0000b"},
        )
    )
    add(
        Hostile(
            "leases-cursor-nul",
            "GET",
            LEASES,
            422,
            "validation_error",
            "#/query/cursor",
            params={"cursor": "\u0000x"},
        )
    )
    add(
        Hostile(
            "jobs-cursor-nul",
            "GET",
            "/v1/jobs",
            422,
            "validation_error",
            "#/query/cursor",
            params={"cursor": "\u0000x"},
        )
    )
    add(Hostile("provider-path-nul", "GET", "/v1/providers/a%00b", ANY_4XX))
    add(Hostile("trait-put-path-nul", "PUT", "/v1/traits/CUSTOM_A%00B", ANY_4XX, who="admin"))
    add(
        Hostile(
            "resource-class-nul",
            "POST",
            "/v1/resource-classes",
            422,
            "validation_error",
            "/name",
            who="admin",
            body={"name": "CUSTOM_A\u0000B"},
        )
    )
    add(
        Hostile(
            "yaml-key-nul",
            "POST",
            LEASES,
            422,
            "validation_error",
            body=lambda s: ('name: ok\n"na\\0me": x\nstart: ' + _at(24) + "\n").encode(),
            headers={"Content-Type": "application/yaml"},
        )
    )
    # 7. deep documents, JSON and YAML alike
    add(
        Hostile(
            "deep-json-lease",
            "POST",
            LEASES,
            400,
            body=_deep_json(5000),
            headers={"Content-Type": "application/json"},
        )
    )
    add(
        Hostile(
            "deep-yaml-lease",
            "POST",
            LEASES,
            400,
            body=b"a: " + b"[" * 5000 + b"]" * 5000,
            headers={"Content-Type": "application/yaml"},
        )
    )
    for path, who in (
        ("/v1/claims", "alpha"),
        ("/v1/jobs", "alpha"),
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
    ):
        add(
            Hostile(
                f"deep-json{path.replace('/', '-')}",
                "POST",
                path,
                400,
                who=who,
                body=_deep_json(5000),
                headers={"Content-Type": "application/json"},
            )
        )
    # bytes that are not what they claim
    add(
        Hostile(
            "non-utf8-json",
            "POST",
            LEASES,
            400,
            body=b'{"name": "\xff\xfe"}',
            headers={"Content-Type": "application/json"},
        )
    )
    add(
        Hostile(
            "non-utf8-yaml",
            "POST",
            LEASES,
            400,
            body=b"name: \xff\xfe\n",
            headers={"Content-Type": "application/yaml"},
        )
    )
    add(
        Hostile(
            "wrong-content-type",
            "POST",
            LEASES,
            415,
            body=b"name=ok",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    )
    add(
        Hostile(
            "truncated-json",
            "POST",
            CLAIMS,
            400,
            body=b'{"items": [',
            headers={"Content-Type": "application/json"},
        )
    )
    add(
        Hostile(
            "oversized-name",
            "POST",
            LEASES,
            422,
            "validation_error",
            "/name",
            body=lambda s: _lease(s, name="x" * 100_000),
        )
    )
    add(
        Hostile(
            "body-over-limit",
            "POST",
            CLAIMS,
            413,
            body=b" " * (2 << 20),
            headers={"Content-Type": "application/json"},
        )
    )
    # 9. a component with no resources, pinned to a site
    add(
        Hostile(
            "find-slot-empty-resources",
            "POST",
            "/v1/find-slot",
            ANY_4XX,
            None,
            "/components/0/resources",
            body=lambda s: _find_slot(
                components=[{"name": "vm", "resources": {}, "constraints": {"site": s.ids["site"]}}]
            ),
        )
    )
    # 10. unknown parameters, mistyped names, wrong JSON types
    add(
        Hostile(
            "unknown-query-param",
            "GET",
            "/v1/providers",
            422,
            "validation_error",
            "#/query/site",
            params={"site": "MICH"},
        )
    )
    add(
        Hostile(
            "unknown-query-param-leases",
            "GET",
            LEASES,
            422,
            "validation_error",
            "#/query/sort",
            params={"sort": "name"},
        )
    )
    add(
        Hostile(
            "mistyped-class",
            "POST",
            LEASES,
            422,
            "validation_error",
            "/items/0/resource_class",
            body=lambda s: (
                _lease(s)
                | {"items": [{"provider_uuid": s.ids["host"], "resource_class": "GPU_A3O", "amount": 1}]}
            ),
        )
    )
    add(
        Hostile(
            "quota-bool-for-int",
            "PUT",
            "/v1/quotas/alpha/VCPU",
            422,
            "validation_error",
            "/max_concurrent",
            who="admin",
            body={"max_concurrent": False},
        )
    )
    add(
        Hostile(
            "quota-float-for-int",
            "PUT",
            "/v1/quotas/alpha/VCPU",
            422,
            "validation_error",
            "/max_concurrent",
            who="admin",
            body={"max_concurrent": 1.5},
        )
    )
    add(
        Hostile(
            "claim-amount-bool",
            "POST",
            CLAIMS,
            422,
            "validation_error",
            "/items/0/amount",
            body=lambda s: (
                _claim(s)
                | {"items": [{"provider_uuid": s.ids["host"], "resource_class": "VCPU", "amount": True}]}
            ),
        )
    )
    add(
        Hostile(
            "claim-amount-negative",
            "POST",
            CLAIMS,
            422,
            "validation_error",
            "/items/0/amount",
            body=lambda s: (
                _claim(s)
                | {"items": [{"provider_uuid": s.ids["host"], "resource_class": "VCPU", "amount": -1}]}
            ),
        )
    )
    add(
        Hostile(
            "claim-amount-huge",
            "POST",
            CLAIMS,
            422,
            "validation_error",
            "/items/0/amount",
            body=lambda s: (
                _claim(s)
                | {"items": [{"provider_uuid": s.ids["host"], "resource_class": "VCPU", "amount": 10**30}]}
            ),
        )
    )
    add(
        Hostile(
            "offer-set-max-offers-huge",
            "POST",
            "/v1/offer-sets",
            422,
            "validation_error",
            "/max_offers",
            body={"request": _find_slot(), "max_offers": 10**9},
        )
    )
    add(
        Hostile(
            "find-slot-count-huge",
            "POST",
            "/v1/find-slot",
            ANY_4XX,
            None,
            "/components/0/count",
            body=_find_slot(components=[{"name": "vm", "count": 10**12, "resources": {"VCPU": 1}}]),
        )
    )
    add(
        Hostile(
            "providers-limit-negative",
            "GET",
            "/v1/providers",
            422,
            "validation_error",
            "#/query/limit",
            params={"limit": "-1"},
        )
    )
    add(
        Hostile(
            "job-priority-float",
            "POST",
            "/v1/jobs",
            422,
            "validation_error",
            "/priority",
            body=lambda s: {"lease_id": s.ids["lease"], "provisioner": "simulated", "priority": 1.5},
        )
    )
    # too low a role
    add(Hostile("user-imports-topology", "POST", "/v1/topology", 403, "forbidden", body={"providers": []}))
    add(
        Hostile(
            "user-creates-provider",
            "POST",
            "/v1/providers",
            403,
            "forbidden",
            body={"name": "mine", "kind": "host"},
        )
    )
    add(
        Hostile(
            "user-sets-quota", "PUT", "/v1/quotas/alpha/VCPU", 403, "forbidden", body={"max_concurrent": 9}
        )
    )
    add(Hostile("user-deletes-trait", "DELETE", "/v1/traits/HW_CPU_X86_AVX2", 403, "forbidden"))
    add(
        Hostile(
            "operator-deletes-resource-class", "DELETE", "/v1/resource-classes/VCPU", ANY_4XX, who="operator"
        )
    )
    add(Hostile("no-token", "POST", LEASES, 401, "unauthorized", who="nobody", body=lambda s: _lease(s)))
    add(Hostile("bad-token", "POST", LEASES, 401, "unauthorized", who="forged", body=lambda s: _lease(s)))
    # 11. a wrong method
    add(Hostile("wrong-method", "PUT", "/v1/leases/{lease}", 405, "method_not_allowed", body={}))
    return cases


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


def _assert_refused(r: httpx.Response, case: Hostile) -> dict[str, Any]:
    assert r.status_code < 500, f"{case.id}: {r.status_code} {r.text[:500]}"
    if case.status == ANY_4XX:
        assert 400 <= r.status_code < 500, f"{case.id}: {r.status_code} {r.text[:500]}"
    else:
        assert r.status_code == case.status, f"{case.id}: {r.status_code} {r.text[:500]}"
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers["content-type"]
    problem: dict[str, Any] = r.json()
    if case.code is not None:
        assert problem["code"] == case.code, problem
    if case.pointer is not None:
        pointers = [e["pointer"] for e in problem.get("errors", [])]
        assert case.pointer in pointers, f"{case.id}: {pointers} ({problem})"
    return problem


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_request_is_refused_cleanly(server: Server, case: Hostile) -> None:
    before = server.snapshot()
    r = _request(server, case)
    problem = _assert_refused(r, case)
    if r.status_code == 405:
        allowed = {m.strip() for m in r.headers.get("allow", "").split(",")}
        assert {"GET", "PATCH", "DELETE"} <= allowed, r.headers
    assert server.snapshot() == before, f"{case.id} wrote behind a {r.status_code}: {problem}"


# -- 2. another project's ids read exactly like unused ids ---------------------------------------------

FOREIGN = [
    ("GET", "/v1/leases/{lease}", None),
    ("PATCH", "/v1/leases/{lease}", {"generation": 0, "end": _at(26)}),
    ("DELETE", "/v1/leases/{lease}", None),
    ("POST", "/v1/leases/{lease}/cancel", None),
    ("GET", "/v1/jobs/{job}", None),
    ("POST", "/v1/jobs/{job}/cancel", None),
    ("GET", "/v1/jobs/{job}/logs", None),
    ("GET", "/v1/offer-sets/{offer_set}", None),
    ("GET", "/v1/offers/{offer}", None),
    ("POST", "/v1/offers/{offer}/accept", None),
    ("POST", "/v1/offers/{offer}/reject", None),
    ("DELETE", "/v1/claims/{claim}", None),
    ("GET", "/v1/find-slot/jobs/{find_slot_job}", None),
    ("GET", "/ivoa/offersets/{ivoa_offerset}", None),
    ("GET", "/ivoa/sessions/{ivoa_session}", None),
    (
        "POST",
        "/ivoa/sessions/{ivoa_session}",
        {"kind": "uri:enum-value-update", "path": "phase", "value": "ACCEPTED"},
    ),
]


@pytest.mark.parametrize(("method", "path", "body"), FOREIGN, ids=[f"{m} {p}" for m, p, _ in FOREIGN])
def test_another_projects_id_reads_like_an_unused_one(
    server: Server, method: str, path: str, body: dict[str, Any] | None
) -> None:
    name = path.split("{")[1].split("}")[0]
    theirs = server.ids[name]
    unused = str(uuid.uuid4()) if "-" in theirs else theirs[:-4] + "zzzz"
    before = server.snapshot()
    answers = []
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for the_id in (theirs, unused):
            r = c.request(
                method, path.format(**{**server.ids, name: the_id}), json=body, headers=server.tokens["beta"]
            )
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
        with httpx.Client(base_url=server.url, timeout=120) as c:
            result["r"] = c.post(
                "/v1/topology",
                content=body,
                headers={**server.tokens["admin"], "Content-Type": "application/json"},
            )

    thread = threading.Thread(target=post)
    thread.start()
    slowest = 0.0
    with httpx.Client(base_url=server.url, timeout=10) as c:
        while thread.is_alive():
            t0 = time.monotonic()
            assert c.get("/healthz").status_code == 200
            slowest = max(slowest, time.monotonic() - t0)
            time.sleep(0.05)
    thread.join()
    r = result["r"]
    assert 400 <= r.status_code < 500, f"{r.status_code} {r.text[:300]}"
    assert slowest < 2.0, f"/healthz took {slowest:.1f} s while the topology was parsed"
    assert server.snapshot() == before


def test_the_table_covers_every_kind(tmp_path: Path) -> None:
    """The table keeps one case of each kind the issue names, so trimming it cannot go unnoticed."""
    del tmp_path
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
