"""Project quotas on ``POST /v1/claims`` (issue 10, item 5): the same policy as leases and offer holds.

A claim through ``/v1/claims`` (explicit items through the route or the fast path, or an allocation
request id) and through ``ClaimService.claim`` / ``claim_async`` is checked against the project's quotas
in the transaction that takes the capacity: 403 ``quota_exceeded`` naming the items, nothing written.
Both backends; on PostgreSQL with and without the two-round-trip path. Concurrent claims of one project
never pass a limit together that only some of them fit.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from slotbroker.api.app import create_app
from slotbroker.api.routers import claims as claims_router
from slotbroker.config import Settings
from slotbroker.domain.claims import ClaimItem, ClaimRequest, ConsumerKind, ConsumerSpec
from slotbroker.domain.errors import Forbidden
from slotbroker.services.access.tokens import Role, TokenService
from slotbroker.services.booking.claims import ClaimService
from slotbroker.services.booking.quotas import QuotaService
from slotbroker.store.db import Database
from slotbroker.store.models import AllocationRow, ConsumerRow
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire.leases import SetQuota

H = dict[str, str]
PROJECT = "science"
START, END = datetime(2031, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, 1, tzinfo=UTC)
START_S, END_S = int(START.timestamp()), int(END.timestamp())


@dataclass
class World:
    app: FastAPI
    client: TestClient
    admin: H
    user: H  # project PROJECT, its token cached (so the fast path may answer)
    host: str
    hits: list[str]  # one entry per claim the fast path answered


def _app(db: Database, fast: bool) -> FastAPI:
    quiet: dict[str, Any] = {"rate_per_s": 10_000, "rate_burst": 10_000, "event_loop_interval_s": 0}
    return create_app(
        Settings(db.url, migrate_on_start=False, planner_workers=0, claim_fast_path=fast, **quiet), db=db
    )


def _bearer(db: Database, role: Role, project: str) -> H:
    return {"Authorization": f"Bearer {TokenService(db).create(project=project, role=role, name='q')}"}


@pytest.fixture(params=["fast", "route"])
def world(request: pytest.FixtureRequest, db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """An app (fast path on or off), a host with 64 VCPU, and a quota of 8 VCPU at once for PROJECT."""
    fast = request.param == "fast"
    hits: list[str] = []
    real = claims_router.claim_response_async

    async def counting(*args: Any) -> Any:
        hits.append("fast")
        return await real(*args)

    monkeypatch.setattr(claims_router, "claim_response_async", counting)
    app = _app(db, fast)
    admin, user = _bearer(db, Role.ADMIN, "ops"), _bearer(db, Role.USER, PROJECT)
    with TestClient(app) as client:
        site = client.post("/v1/providers", json={"name": "S", "kind": "site"}, headers=admin)
        assert site.status_code == 201, site.text
        host = {"name": "S-h0", "kind": "host", "inventories": {"VCPU": 64, "MEMORY_MB": 65536}}
        r = client.post("/v1/providers", json={**host, "parent_uuid": site.json()["uuid"]}, headers=admin)
        assert r.status_code == 201, r.text
        host_uuid = str(r.json()["uuid"])
        r = client.put(f"/v1/quotas/{PROJECT}/VCPU", json={"max_concurrent": 8}, headers=admin)
        assert r.status_code == 200, r.text
        assert client.get("/v1/providers", headers=user).status_code == 200  # caches the token
        yield World(app, client, admin, user, host_uuid, hits)


def _post(w: World, *items: tuple[str, int], **extra: Any) -> Any:
    body = {
        "items": [{"provider_uuid": w.host, "resource_class": rc, "amount": a} for rc, a in items],
        "start": START.isoformat(),
        "end": END.isoformat(),
        **extra,
    }
    return w.client.post("/v1/claims", json=body, headers=w.user)


def _consumers(db: Database, project: str = PROJECT) -> tuple[int, int]:
    """How many consumers and allocation rows ``project`` has."""
    with UnitOfWork(db, readonly=True) as uow:
        s = uow.session
        mine = ConsumerRow.project == project
        consumers = s.scalar(select(func.count()).select_from(ConsumerRow).where(mine))
        allocations = s.scalar(
            select(func.count())
            .select_from(AllocationRow)
            .join(ConsumerRow, ConsumerRow.id == AllocationRow.consumer_id)
            .where(mine)
        )
    return int(consumers or 0), int(allocations or 0)


def _expect_quota_refusal(r: Any, *pointers: str) -> None:
    assert r.status_code == 403, r.text
    problem = r.json()
    assert problem["code"] == "quota_exceeded"
    assert [e["pointer"] for e in problem["errors"]] == list(pointers)
    assert all("quota of 8" in e["detail"] for e in problem["errors"])


# -- through the API -------------------------------------------------------------------------------------
def test_explicit_claims_respect_the_quota(world: World, db: Database) -> None:
    """The regression: 16 VCPU under a quota of 8 was a 201 through /v1/claims."""
    _expect_quota_refusal(_post(world, ("VCPU", 16)), "/items/0")
    assert _consumers(db) == (0, 0)
    ok = _post(world, ("VCPU", 8), ("MEMORY_MB", 1024))  # no quota on MEMORY_MB
    assert ok.status_code == 201, ok.text
    # one more VCPU breaks it, wherever the VCPU item is; the pointer names exactly that item
    _expect_quota_refusal(_post(world, ("MEMORY_MB", 1), ("VCPU", 1), consumer={"kind": "hold"}), "/items/1")
    assert _consumers(db) == (1, 2)
    # which path answered: the fast path when it is on (a cached token and a JSON body), else the route
    assert len(world.hits) == (3 if world.app.state.settings.claim_fast_path else 0)
    # other projects and released claims do not count
    other = _bearer(db, Role.USER, "elsewhere")
    body = {"items": [{"provider_uuid": world.host, "resource_class": "VCPU", "amount": 16}]}
    r = world.client.post(
        "/v1/claims", json={**body, "start": START.isoformat(), "end": END.isoformat()}, headers=other
    )
    assert r.status_code == 201, r.text
    assert world.client.delete(f"/v1/claims/{ok.json()['uuid']}", headers=world.user).status_code == 204
    assert _post(world, ("VCPU", 8)).status_code == 201


def test_claims_outside_the_quota_interval_do_not_count(world: World) -> None:
    assert _post(world, ("VCPU", 8)).status_code == 201
    later = {"start": "2031-01-01T01:00:00Z", "end": "2031-01-01T02:00:00Z"}  # touches, does not overlap
    assert _post(world, ("VCPU", 8), **later).status_code == 201
    _expect_quota_refusal(_post(world, ("VCPU", 1)), "/items/0")


def test_claim_by_allocation_request_respects_the_quota(world: World, db: Database) -> None:
    r = world.client.get("/v1/allocation-candidates", params={"resources": "VCPU:16"}, headers=world.user)
    assert r.status_code == 200, r.text
    ar = r.json()["allocation_requests"][0]["id"]
    refused = world.client.post("/v1/claims", json={"allocation_request": ar}, headers=world.user)
    assert refused.status_code == 403, refused.text
    problem = refused.json()
    assert problem["code"] == "quota_exceeded"
    # an id claim's body has no items: the pointer names what the client sent
    assert [e["pointer"] for e in problem["errors"]] == ["/allocation_request"]
    assert _consumers(db) == (0, 0)
    r = world.client.get("/v1/allocation-candidates", params={"resources": "VCPU:8"}, headers=world.user)
    ar = r.json()["allocation_requests"][0]["id"]
    ok = world.client.post("/v1/claims", json={"allocation_request": ar}, headers=world.user)
    assert ok.status_code == 201, ok.text


# -- through the service ---------------------------------------------------------------------------------
@dataclass
class Bare:
    db: Database
    host: str
    quotas: QuotaService


@pytest.fixture
def bare(db: Database) -> Iterator[Bare]:
    """A host with 64 VCPU, no app; quotas set per test."""
    app = _app(db, fast=False)
    admin = _bearer(db, Role.ADMIN, "ops")
    with TestClient(app) as client:
        site = client.post("/v1/providers", json={"name": "S", "kind": "site"}, headers=admin)
        host = {"name": "S-h0", "kind": "host", "inventories": {"VCPU": 64}}
        r = client.post("/v1/providers", json={**host, "parent_uuid": site.json()["uuid"]}, headers=admin)
        assert r.status_code == 201, r.text
        yield Bare(db, str(r.json()["uuid"]), QuotaService(db))


def _request(host: str, amount: int, project: str = PROJECT, hour: int = 0) -> ClaimRequest:
    spec = ConsumerSpec(ConsumerKind.LEASE, project, START_S + 3600 * hour, END_S + 3600 * hour)
    return ClaimRequest(spec, (ClaimItem(host, "VCPU", amount),))


@pytest.mark.parametrize("pg_two_trips", [True, False])
def test_service_claims_check_the_quota_on_every_path(bare: Bare, pg_two_trips: bool) -> None:
    bare.quotas.put(PROJECT, "VCPU", SetQuota(max_concurrent=8, max_resource_hours=None))
    claims = ClaimService(bare.db, pg_two_trips=pg_two_trips)
    with pytest.raises(Forbidden) as info:
        claims.claim(_request(bare.host, 9))
    assert info.value.code == "quota_exceeded"
    assert [e.pointer for e in info.value.errors] == ["/items/0"]
    claims.claim(_request(bare.host, 5))
    with pytest.raises(Forbidden):
        asyncio.run(claims.claim_async(_request(bare.host, 4)))
    asyncio.run(claims.claim_async(_request(bare.host, 3)))
    claims.claim(_request(bare.host, 64 - 8, project="other"))  # no quota there: the fast path's case
    assert _consumers(bare.db) == (2, 2)


_HOURS = itertools.count(1)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(amounts=st.lists(st.integers(1, 6), min_size=1, max_size=6), limit=st.integers(1, 12))
def test_a_claim_passes_exactly_when_the_total_fits(bare: Bare, amounts: list[int], limit: int) -> None:
    """Property: claims one after another succeed exactly while the running total stays within it."""
    # a fresh project and hour per example: the database (and the host's capacity) is shared
    hour = next(_HOURS)
    project = f"p{hour}"
    bare.quotas.put(project, "VCPU", SetQuota(max_concurrent=limit, max_resource_hours=None))
    claims = ClaimService(bare.db)
    held, expected, got = 0, [], []
    for amount in amounts:
        fits = held + amount <= limit
        held += amount if fits else 0
        expected.append("ok" if fits else "quota_exceeded")
        try:
            claims.claim(_request(bare.host, amount, project=project, hour=hour))
            got.append("ok")
        except Forbidden as exc:
            got.append(exc.code)
    assert got == expected
    passed = expected.count("ok")
    assert _consumers(bare.db, project) == (passed, passed)  # nothing written for the refused


# -- concurrency -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("n", "k"), [(12, 5)])
def test_concurrent_claims_never_pass_a_quota_together(bare: Bare, n: int, k: int) -> None:
    """N threads each claim 1 VCPU under a quota of K (capacity for all of them): exactly K succeed."""
    bare.quotas.put(PROJECT, "VCPU", SetQuota(max_concurrent=k, max_resource_hours=None))
    claims = ClaimService(bare.db)
    gate = threading.Barrier(n)
    outcomes: list[str] = []
    lock = threading.Lock()

    def one() -> None:
        gate.wait()
        try:
            claims.claim(_request(bare.host, 1))
            got = "ok"
        except Forbidden as exc:
            got = exc.code
        with lock:
            outcomes.append(got)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok"] * k + ["quota_exceeded"] * (n - k)
    assert _consumers(bare.db) == (k, k)


def test_concurrent_async_claims_never_pass_a_quota_together(bare: Bare) -> None:
    """The same on the event loop (the API's fast path): claims interleave on one loop."""
    bare.quotas.put(PROJECT, "VCPU", SetQuota(max_concurrent=4, max_resource_hours=None))
    claims = ClaimService(bare.db)

    async def all_of_them() -> list[BaseException | object]:
        return await asyncio.gather(
            *(claims.claim_async(_request(bare.host, 1)) for _ in range(10)), return_exceptions=True
        )

    outcomes = asyncio.run(all_of_them())
    refused = [o for o in outcomes if isinstance(o, Forbidden)]
    assert len(refused) == 6
    assert {o.code for o in refused} == {"quota_exceeded"}
    assert _consumers(bare.db) == (4, 4)


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)  # the two-round-trip path is PostgreSQL's
def test_only_quota_claims_leave_the_two_round_trip_path(bare: Bare, monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL a project without quota rows for the claimed classes stays on the fast path; one
    with them takes the general path (which locks and checks them)."""
    assert bare.db.engine.dialect.name == "postgresql"
    general: list[str] = []
    real = ClaimService._claim_once

    def counting(self: ClaimService, request: ClaimRequest, now: int, attempts: int) -> Any:
        general.append(request.consumer.project)
        return real(self, request, now, attempts)

    monkeypatch.setattr(ClaimService, "_claim_once", counting)
    bare.quotas.put(PROJECT, "MEMORY_MB", SetQuota(max_concurrent=1, max_resource_hours=None))
    bare.quotas.put("other", "VCPU", SetQuota(max_concurrent=1, max_resource_hours=None))
    claims = ClaimService(bare.db)
    claims.claim(_request(bare.host, 2))  # a quota on another class only
    asyncio.run(claims.claim_async(_request(bare.host, 2)))
    assert general == []
    bare.quotas.put(PROJECT, "VCPU", SetQuota(max_concurrent=10, max_resource_hours=None))
    claims.claim(_request(bare.host, 2))
    asyncio.run(claims.claim_async(_request(bare.host, 2)))
    assert general == [PROJECT, PROJECT]
    assert _consumers(bare.db) == (4, 4)
