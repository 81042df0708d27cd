"""An app a test is done with is garbage once FastAPI's endpoint caches are emptied, as the root
conftest's ``_forget_fastapi_endpoints`` does after every test.

The regression: FastAPI's caches keyed by endpoint callables kept every app of a run alive (with its
services, calendar index and SQLAlchemy metadata): 4.7M objects after ``tests/api``, 4 s per full
collection, and a timing-bound test that flaked. Without ``forget_fastapi_endpoints`` the app below
stays alive.
"""

from __future__ import annotations

import gc
import weakref

from fastapi.testclient import TestClient

from conftest import forget_fastapi_endpoints
from slotbroker.api.app import create_app
from slotbroker.config import Settings
from slotbroker.services.access.tokens import Role, TokenService
from slotbroker.store.db import Database


def test_an_app_that_served_requests_is_collected_once_the_endpoint_caches_are_emptied(db: Database) -> None:
    settings = Settings(
        database_url=db.url, migrate_on_start=False, event_loop_interval_s=0, planner_workers=0
    )
    app = create_app(settings, db=db)
    admin = {"Authorization": f"Bearer {TokenService(db).create(project='demo', role=Role.ADMIN, name='t')}"}
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/v1/providers", headers=admin).status_code == 200
    ref = weakref.ref(app)
    del app, client
    forget_fastapi_endpoints()
    gc.collect()
    leftover = ref()
    assert leftover is None, f"app still alive: {gc.get_referrers(leftover)[:3]}"
