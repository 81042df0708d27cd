"""A test's app is garbage once the test is over (the root conftest's ``_forget_fastapi_endpoints``).

The regression: FastAPI's caches keyed by endpoint callables kept every app of a run alive (with its
services, calendar index and SQLAlchemy metadata): 4.7M objects after ``tests/api``, 4 s per full
collection, and a timing-bound test that flaked. The second test runs after the first (file order) and
checks that the apps the first one used were collected.
"""

from __future__ import annotations

import gc
import weakref

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

_used: list[weakref.ref[FastAPI]] = []


def test_an_app_serves_requests(app: FastAPI, client: TestClient, admin: dict[str, str]) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/v1/providers", headers=admin).status_code == 200
    _used.append(weakref.ref(app))


def test_the_apps_of_earlier_tests_are_collected() -> None:
    if not _used:
        pytest.skip("needs test_an_app_serves_requests to run first (file order)")
    gc.collect()
    alive = [ref for ref in _used if ref() is not None]
    assert not alive, f"{len(alive)} of {len(_used)} apps still alive: {gc.get_referrers(alive[0]())[:3]}"
