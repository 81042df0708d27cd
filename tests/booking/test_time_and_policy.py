"""Times outside the supported range and the one booking policy, on every path that takes capacity, on
both backends: nothing out of range is written, an error answer means nothing was written, and the
claims, leases and holds paths refuse the same bookings."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from slotbroker.domain.claims import ClaimItem, ClaimRequest, ConsumerKind, ConsumerSpec
from slotbroker.domain.errors import Forbidden, ValidationFailed
from slotbroker.domain.inventory import Inventory
from slotbroker.domain.limits import TIME_MAX_S, TIME_MIN_S, BookingPolicy, time_problems
from slotbroker.domain.providers import ProviderKind
from slotbroker.domain.request import parse_request
from slotbroker.services.inventory.service import InventoryService
from slotbroker.store.db import Database
from slotbroker.store.models import AllocationRow, ConsumerRow
from slotbroker.wire import providers as cmd

_names = itertools.count()
DAY = 86400


def make_host(db: Database) -> str:
    site = InventoryService(db).create_provider(
        cmd.CreateProvider(name=f"TSITE{next(_names)}", kind=ProviderKind.SITE)
    )
    body = cmd.CreateProvider(
        name=f"thost{next(_names)}",
        kind=ProviderKind.HOST,
        parent_uuid=site.uuid,  # pydantic parses the str
        inventories={"VCPU": Inventory(total=8), "MEMORY_MB": Inventory(total=1024)},
    )
    return InventoryService(db).create_provider(body).uuid


def rows(db: Database) -> tuple[int, int]:
    with db.engine.connect() as conn:
        consumers = conn.execute(select(func.count()).select_from(ConsumerRow)).scalar_one()
        allocations = conn.execute(select(func.count()).select_from(AllocationRow)).scalar_one()
    return int(consumers), int(allocations)


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def soon() -> int:
    return (int(time.time()) // 3600 + 2) * 3600


def claim_body(host: str, start: str, end: str, **consumer: Any) -> dict[str, Any]:
    return {
        "items": [{"provider_uuid": host, "resource_class": "VCPU", "amount": 1}],
        "start": start,
        "end": end,
        "consumer": consumer,
    }


def find_slot_body(start: int) -> dict[str, Any]:
    return {
        "components": [{"name": "vm", "resources": {"VCPU": 1}}],
        "earliest_start": iso(start),
        "latest_end": iso(start + DAY),
        "duration": "PT1H",
    }


def pointers(r: Any) -> list[str]:
    return [e["pointer"] for e in r.json()["errors"]]


# -- item 3: an extreme time cannot be written, and find-slot keeps answering ------------------------------


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        (None, "2600-01-01T00:00:00Z", "/end"),
        ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "/start"),
        ("1969-12-31T00:00:00Z", None, "/start"),
    ],
)
def test_a_claim_outside_the_supported_times_is_refused_and_find_slot_still_answers(
    client: TestClient, user: dict[str, str], db: Database, start: str | None, end: str | None, field: str
) -> None:
    host = make_host(db)
    s = soon()
    before = rows(db)
    r = client.post("/v1/claims", json=claim_body(host, start or iso(s), end or iso(s + 3600)), headers=user)
    assert r.status_code == 422, r.text
    assert field in pointers(r)
    assert rows(db) == before
    found = client.post("/v1/find-slot", json=find_slot_body(s), headers=user)
    assert found.status_code == 200, found.text
    assert found.json()["windows"]


def test_a_hold_expiring_past_the_supported_times_is_refused(
    client: TestClient, user: dict[str, str], db: Database
) -> None:
    host = make_host(db)
    s = soon()
    before = rows(db)
    body = claim_body(host, iso(s), iso(s + 3600), kind="hold", expires="9999-01-01T00:00:00Z")
    r = client.post("/v1/claims", json=body, headers=user)
    assert r.status_code == 422, r.text
    assert pointers(r) == ["/consumer/expires"]
    assert rows(db) == before


# -- item 4: validated before writing ------------------------------------------------------------------------


def test_a_start_past_year_9999_in_utc_is_refused_before_anything_is_written(
    client: TestClient, user: dict[str, str], db: Database
) -> None:
    host = make_host(db)
    before = rows(db)
    body = claim_body(host, "9999-12-31T23:00:00-23:59", "9999-12-31T23:59:59Z")
    r = client.post("/v1/claims", json=body, headers=user)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_error"
    assert "/start" in pointers(r)
    assert rows(db) == before


def test_leases_refuse_times_outside_the_range_on_create_and_update(
    client: TestClient, user: dict[str, str], db: Database
) -> None:
    host = make_host(db)
    s = soon()
    lease = {
        "items": [{"provider_uuid": host, "resource_class": "VCPU", "amount": 1}],
        "start": iso(s),
        "end": "2600-01-01T00:00:00Z",
    }
    before = rows(db)
    r = client.post("/v1/leases", json=lease, headers=user)
    assert r.status_code == 422, r.text
    assert pointers(r) == ["/end"]
    assert rows(db) == before
    r = client.post("/v1/leases", json={**lease, "end": iso(s + 3600)}, headers=user)
    assert r.status_code == 201, r.text
    made = r.json()
    r = client.patch(
        f"/v1/leases/{made['id']}",
        json={"generation": made["generation"], "start": "9999-12-31T23:00:00-23:59"},
        headers=user,
    )
    assert r.status_code == 422, r.text
    assert "/start" in pointers(r)
    assert client.get(f"/v1/leases/{made['id']}", headers=user).json()["start"] == made["start"]


def test_find_slot_refuses_a_range_past_the_supported_times(client: TestClient, user: dict[str, str]) -> None:
    late = {
        **find_slot_body(0),
        "earliest_start": "2499-12-31T12:00:00Z",
        "latest_end": "2600-01-01T00:00:00Z",
    }
    r = client.post("/v1/find-slot", json=late, headers=user)
    assert r.status_code == 422, r.text
    assert pointers(r) == ["/latest_end"]
    overflow = {
        "components": [{"name": "vm", "resources": {"VCPU": 1}}],
        "start_within": "9999-12-31T00:00:00Z/P3D",
        "duration": "PT1H",
    }
    r = client.post("/v1/find-slot", json=overflow, headers=user)
    assert r.status_code == 422, r.text
    assert pointers(r) == ["/start_within"]


# -- item 5: one policy, whichever path books ----------------------------------------------------------------


@pytest.fixture
def strict(db: Database) -> tuple[TestClient, FastAPI]:
    """An app with a one-day booking limit and one-hour holds."""
    from slotbroker.api.app import create_app
    from slotbroker.config import Settings

    settings = Settings(
        database_url=db.url,
        migrate_on_start=False,
        rate_per_s=10_000,
        rate_burst=10_000,
        event_loop_interval_s=0,
        planner_workers=0,
        max_lease_duration_s=DAY,
    )
    app = create_app(settings, db=db)
    return TestClient(app), app


def token(app: FastAPI) -> dict[str, str]:
    from slotbroker.services.access.tokens import Role, TokenService

    secret = TokenService(app.state.services.db).create(project="science", role=Role.USER)
    return {"Authorization": f"Bearer {secret}"}


def test_claims_and_leases_refuse_the_same_too_long_booking(
    strict: tuple[TestClient, FastAPI], db: Database
) -> None:
    client, app = strict
    headers = token(app)
    host = make_host(db)
    s = soon()
    before = rows(db)
    lease = {
        "items": [{"provider_uuid": host, "resource_class": "VCPU", "amount": 1}],
        "start": iso(s),
        "end": iso(s + DAY + 1),
    }
    by_lease = client.post("/v1/leases", json=lease, headers=headers)
    for kind in ("lease", "hold"):
        by_claim = client.post(
            "/v1/claims", json=claim_body(host, iso(s), iso(s + DAY + 1), kind=kind), headers=headers
        )
        assert (by_claim.status_code, by_claim.json()["code"]) == (403, "lease_too_long"), by_claim.text
        assert pointers(by_claim) == ["/end"]
    assert (by_lease.status_code, by_lease.json()["code"]) == (403, "lease_too_long")
    assert rows(db) == before
    ok = client.post("/v1/claims", json=claim_body(host, iso(s), iso(s + DAY)), headers=headers)
    assert ok.status_code == 201, ok.text


def test_a_claim_by_allocation_request_follows_the_same_policy(
    strict: tuple[TestClient, FastAPI], db: Database
) -> None:
    client, app = strict
    headers = token(app)
    make_host(db)
    s = soon()
    search = {**find_slot_body(s), "latest_end": iso(s + 5 * DAY), "duration": "P2D"}
    found = client.post("/v1/find-slot", json=search, headers=headers)
    assert found.status_code == 200, found.text
    ar = found.json()["windows"][0]["allocation_request"]
    before = rows(db)
    r = client.post("/v1/claims", json={"allocation_request": ar}, headers=headers)
    assert (r.status_code, r.json()["code"]) == (403, "lease_too_long"), r.text
    assert pointers(r) == ["/allocation_request"]
    assert rows(db) == before


def test_a_hold_may_not_keep_capacity_past_the_hold_limit(
    client: TestClient, user: dict[str, str], db: Database
) -> None:
    host = make_host(db)
    s = soon()
    before = rows(db)
    far = claim_body(host, iso(s), iso(s + 3600), kind="hold", expires="2400-01-01T00:00:00Z")
    r = client.post("/v1/claims", json=far, headers=user)
    assert (r.status_code, r.json()["code"]) == (403, "hold_too_long"), r.text
    assert pointers(r) == ["/consumer/expires"]
    assert rows(db) == before
    near = claim_body(host, iso(s), iso(s + 3600), kind="hold", expires=iso(int(time.time()) + 600))
    assert client.post("/v1/claims", json=near, headers=user).status_code == 201


def test_the_claim_service_applies_the_policy_to_every_caller(db: Database) -> None:
    from slotbroker.services.booking.claims import ClaimService

    host = make_host(db)
    svc = ClaimService(db, policy=BookingPolicy(max_duration_s=3600, max_hold_s=60))
    now = int(time.time())
    item = (ClaimItem(host, "VCPU", 1),)
    long = ClaimRequest(ConsumerSpec(ConsumerKind.LEASE, "p", now + 10, now + 3611), item)
    with pytest.raises(Forbidden) as exc:
        svc.claim(long, now_s=now)
    assert exc.value.code == "lease_too_long"
    held = ClaimRequest(ConsumerSpec(ConsumerKind.HOLD, "p", now + 10, now + 20, expires_s=now + 61), item)
    with pytest.raises(Forbidden) as exc:
        svc.claim(held, now_s=now)
    assert exc.value.code == "hold_too_long"
    late = ClaimRequest(ConsumerSpec(ConsumerKind.LEASE, "p", TIME_MAX_S, TIME_MAX_S + 1), item)
    with pytest.raises(ValidationFailed) as bad:
        svc.claim(late, now_s=now)
    assert [e.pointer for e in bad.value.errors] == ["/consumer/end_s"]
    assert rows(db) == (0, 0)


# -- the range itself ----------------------------------------------------------------------------------------


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_time_problems_flag_exactly_the_times_outside_the_range(seconds: int) -> None:
    flagged = time_problems(("/t", seconds))
    assert bool(flagged) == (not TIME_MIN_S <= seconds <= TIME_MAX_S)
    assert all(e.pointer == "/t" for e in flagged)


@settings(max_examples=100)
@given(st.integers(min_value=TIME_MAX_S - 3 * DAY, max_value=TIME_MAX_S + 3 * DAY))
def test_a_find_slot_request_is_accepted_only_when_its_range_ends_in_bounds(end: int) -> None:
    doc = {**find_slot_body(0), "earliest_start": iso(end - DAY), "latest_end": iso(end)}
    try:
        parse_request(doc)
    except ValidationFailed:
        assert end > TIME_MAX_S
    else:
        assert end <= TIME_MAX_S


# -- IVOA ----------------------------------------------------------------------------------------------------


IVOA_KINDS = "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/"
NOTEBOOK = {
    "kind": f"{IVOA_KINDS}executable/jupyter-notebook.yaml",
    "location": "https://example.org/nb.ipynb",
}
COMPUTE_KIND = f"{IVOA_KINDS}compute/simple-compute-resource.yaml"


def ivoa(client: TestClient, user: dict[str, str], start: str, duration: str) -> Any:
    body = {
        "executable": NOTEBOOK,
        "compute": {"kind": COMPUTE_KIND, "cores": {"min": 1, "max": 1}, "memory": {"min": 1, "max": 1}},
        "schedule": {"requested": {"start": start, "duration": duration}},
    }
    return client.post("/ivoa/requests", json=body, headers={**user, "Accept": "application/json"})


def test_ivoa_refuses_a_start_outside_the_supported_times(
    client: TestClient, user: dict[str, str], db: Database
) -> None:
    make_host(db)
    before = rows(db)
    for start in ("2600-01-01T00:00:00Z/PT1H", "2499-12-31T23:00:00Z/P3D"):
        r = ivoa(client, user, start, "PT1H")
        assert r.status_code == 400, r.text
        assert [e["pointer"] for e in r.json()["errors"]] == ["/schedule/requested/start"]
    assert rows(db) == before


def test_offers_and_ivoa_refuse_a_duration_the_policy_forbids(
    client: TestClient, user: dict[str, str], db: Database
) -> None:
    make_host(db)
    s = soon()
    before = rows(db)
    request = {**find_slot_body(s), "latest_end": iso(s + 60 * DAY), "duration": "P45D"}
    r = client.post("/v1/offer-sets", json={"request": request}, headers=user)
    assert (r.status_code, r.json()["code"]) == (403, "lease_too_long"), r.text
    assert pointers(r) == ["/request/duration"]
    r = ivoa(client, user, iso(s) + "/PT1H", "P45D")  # IVOA says no in its own terms: result NO
    assert (r.status_code, r.json()["result"], r.json()["offers"]) == (200, "NO", []), r.text
    assert any("at most 2592000 s" in m["message"] for m in r.json()["messages"])
    assert rows(db) == before


def test_allocation_candidates_refuse_times_outside_the_range(
    client: TestClient, user: dict[str, str], db: Database
) -> None:
    make_host(db)
    for name, value in (("start", "2600-01-01T00:00:00Z"), ("end", "2600-01-01T00:00:00Z")):
        r = client.get(f"/v1/allocation-candidates?resources=VCPU:1&{name}={value}", headers=user)
        assert r.status_code == 422, r.text
        assert pointers(r) == [f"#/query/{name}"]
