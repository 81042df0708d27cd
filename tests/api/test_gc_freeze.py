"""Serving freezes what startup built, so the garbage collector's full collections skip it (issue 18).

A full collection walks every tracked object with all threads stopped; the app, its routes, pydantic
schemas, SQLAlchemy and the service graph are ~250k objects, ~100 ms a walk, which was the p99 of
find-slot even with one client. Shutdown unfreezes, so a process that builds app after app (the tests)
can still collect the old ones.
"""

from __future__ import annotations

import gc

from fastapi import FastAPI
from fastapi.testclient import TestClient


def test_serving_freezes_the_startup_objects_and_shutdown_releases_them(app: FastAPI) -> None:
    gc.unfreeze()  # whatever an earlier test left
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        frozen = gc.get_freeze_count()
        assert frozen > 10_000, frozen  # the app and its libraries, not a handful
    assert gc.get_freeze_count() == 0
