"""A synchronous find-slot holds a worker for at most its time budget (SLOTBROKER_FIND_SLOT_BUDGET_MS):
past it the answer says what it covered (``complete`` false, ``searched_until``), is not cached, and a
find-slot job (``Prefer: respond-async``) searches the whole range. Both databases."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import _token
from slotbroker.api.app import create_app
from slotbroker.config import Settings
from slotbroker.services.access.tokens import Role
from slotbroker.store.db import Database

HOUR = 3600
TOPOLOGY = {
    "providers": [
        {
            "name": "b-site",
            "kind": "site",
            "children": [{"name": "b-host", "kind": "host", "inventories": {"VCPU": 4}}],
        }
    ]
}


@pytest.fixture
def tight(db: Database) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """A server whose searches may take a microsecond: only the first candidate is ever examined."""
    settings = Settings(
        database_url=db.url,
        migrate_on_start=False,
        rate_per_s=10_000,
        rate_burst=10_000,
        event_loop_interval_s=0,
        planner_workers=0,
        find_slot_budget_ms=0.001,
    )
    app = create_app(settings, db=db)
    with TestClient(app) as client:
        admin = _token(app, Role.ADMIN)
        assert client.post("/v1/topology", json=TOPOLOGY, headers=admin).status_code == 200
        yield client, admin


def request() -> dict[str, Any]:
    now = int(time.time())
    start = now - now % HOUR + 2 * HOUR
    return {
        "components": [{"name": "c", "resources": {"VCPU": 4}}],
        "earliest_start": datetime.fromtimestamp(start, UTC).isoformat(),
        "latest_end": datetime.fromtimestamp(start + 24 * HOUR, UTC).isoformat(),
        "duration": "PT1H",
        "limit": 3,
    }


def test_a_search_past_its_budget_says_what_it_covered(tight: tuple[TestClient, dict[str, str]]) -> None:
    client, admin = tight
    r = client.post("/v1/find-slot", json=request(), headers=admin)
    assert r.status_code == 200, r.text
    part = r.json()
    assert part["complete"] is False
    assert len(part["windows"]) == 1  # the first start fits; the budget was gone before the second
    assert part["searched_until"] == part["windows"][0]["end"]  # the next start it would have tried
    assert part["explanation"] is None  # nothing proven about the rest
    again = client.post("/v1/find-slot", json=request(), headers=admin).json()
    assert again["cached"] is False  # an incomplete answer is not kept
    # a job has no budget: the whole range, all three windows
    job = client.post("/v1/find-slot", json=request(), headers={**admin, "Prefer": "respond-async"})
    assert job.status_code == 202, job.text
    deadline = time.monotonic() + 30
    while True:
        done = client.get(job.headers["Location"], headers=admin).json()
        if done["status"] in ("done", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert done["status"] == "done", done
    assert done["result"]["complete"] is True
    assert done["result"]["searched_until"] is None
    assert len(done["result"]["windows"]) == 3


def test_the_default_budget_finishes_ordinary_searches(client: TestClient, admin: dict[str, str]) -> None:
    assert client.post("/v1/topology", json=TOPOLOGY, headers=admin).status_code == 200
    full = client.post("/v1/find-slot", json=request(), headers=admin).json()
    assert full["complete"] is True
    assert full["searched_until"] is None
    assert len(full["windows"]) == 3
