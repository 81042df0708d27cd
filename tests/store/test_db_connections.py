"""Pooled PostgreSQL connections that die (a database restart, a proxy's idle cut), on a real server.

The pool pings a connection only after it sat idle (``store/db.py``: a ping per checkout would cost a
round trip per transaction); a connection that dies while in use fails its request with a 503 problem
and Retry-After, and the next request gets a fresh connection.
"""

from __future__ import annotations

import time

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event
from sqlalchemy.exc import DBAPIError, OperationalError

import slotbroker.store.db as dbmod
from conftest import PG_BASE_URL, PG_URL, require_postgres, reset_postgres
from slotbroker.api.app import create_app
from slotbroker.config import Settings
from slotbroker.services.access.tokens import Role, TokenService
from slotbroker.store.db import Database

pytestmark = pytest.mark.postgres


def _backend_pid(db: Database, engine: Engine | None = None) -> int:
    with (engine or db.engine).connect() as conn:
        return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def _terminate(pid: int) -> None:
    """Kill one backend from outside, and wait until it is gone."""
    with psycopg.connect(PG_BASE_URL.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as c:
        assert c.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
        for _ in range(200):
            if c.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone() == (0,):
                return
            time.sleep(0.01)
    raise AssertionError(f"backend {pid} still there")


@pytest.fixture
def pg(pg: Database) -> Database:
    pg.engine.dispose()  # start with an empty pool: the tests reason about exactly one connection
    return pg


def test_a_connection_idle_past_the_threshold_is_pinged_and_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    require_postgres()
    reset_postgres()
    monkeypatch.setattr(dbmod, "IDLE_PING_S", 0.0)  # every checkout counts as "after idling"
    db = Database(PG_URL)
    try:
        first = _backend_pid(db)
        assert _backend_pid(db) == first  # pooled: the same connection again
        _terminate(first)
        second = _backend_pid(db)  # the ping failed, the pool replaced the connection before use
        assert second != first
    finally:
        db.dispose()


def test_a_recently_used_connection_is_not_pinged(pg: Database) -> None:
    pings: list[str] = []
    first = _backend_pid(pg)

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        pings.append(statement)

    event.listen(pg.engine, "before_cursor_execute", count)
    assert _backend_pid(pg) == first
    # Only our own statement went over the wire: no ping round trip on this checkout.
    assert pings == ["SELECT pg_backend_pid()"]


def test_a_connection_lost_in_use_answers_503_then_recovers(pg: Database) -> None:
    settings = Settings(
        database_url=pg.url,
        migrate_on_start=False,
        rate_per_s=10_000,
        rate_burst=10_000,
        event_loop_interval_s=0,
        planner_workers=0,
    )
    app = create_app(settings, db=pg)
    secret = TokenService(pg).create(project="demo", role=Role.ADMIN, name="t")
    headers = {"Authorization": f"Bearer {secret}"}
    with TestClient(app) as client:
        assert client.get("/v1/providers", headers=headers).status_code == 200  # token now cached
        pid = _backend_pid(pg)  # the pool holds this one connection, used moments ago (no ping)
        _terminate(pid)
        lost = client.get("/v1/providers", headers=headers)
        assert lost.status_code == 503
        assert lost.headers["content-type"].startswith("application/problem+json")
        assert lost.headers["retry-after"] == "1"
        assert lost.json()["code"] == "database_unavailable"
        again = client.get("/v1/providers", headers=headers)
        assert again.status_code == 200
        assert _backend_pid(pg) != pid

        # Claims run on a pool of their own (store/claims/pg_two_trips.py): same answer, nothing
        # written, and the next claim goes through on a fresh connection.
        def create(body: dict[str, object]) -> str:
            made = client.post("/v1/providers", json=body, headers=headers)
            assert made.status_code == 201, made.text
            return str(made.json()["uuid"])

        site = create({"name": "s1", "kind": "site"})
        host = create({"name": "h1", "kind": "host", "parent_uuid": site, "inventories": {"VCPU": 4}})
        claim = {
            "items": [{"provider_uuid": host, "resource_class": "VCPU", "amount": 4}],
            "start": "2030-01-01T00:00:00Z",
            "end": "2030-01-01T01:00:00Z",
        }
        _terminate(_backend_pid(pg, pg.claims_engine))
        lost_claim = client.post("/v1/claims", json=claim, headers=headers)
        assert lost_claim.status_code == 503, lost_claim.text
        assert lost_claim.json()["code"] == "database_unavailable"
        assert client.post("/v1/claims", json=claim, headers=headers).status_code == 201
        assert client.post("/v1/claims", json=claim, headers=headers).status_code == 409  # it is full


def test_raw_statements_fail_the_sqlalchemy_way(database_url: str) -> None:
    """``store.prebuilt.run_raw`` (the claims' hot statements) raises DBAPIError subclasses,
    on both backends, so retries and the API's problem mapping see what they expect."""
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    from slotbroker.store.prebuilt import run_raw

    db = Database(database_url)
    try:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE raw_probe (id INTEGER PRIMARY KEY)")
            assert run_raw(conn, "INSERT INTO raw_probe (id) VALUES (1)", ()) == []
            assert run_raw(conn, "SELECT id FROM raw_probe", ()) == [(1,)]
        with db.engine.begin() as conn, pytest.raises(IntegrityError):
            run_raw(conn, "INSERT INTO raw_probe (id) VALUES (1)", ())
        with db.engine.begin() as conn, pytest.raises((ProgrammingError, OperationalError)):
            run_raw(conn, "SELECT no_such_column FROM raw_probe", ())
    finally:
        db.dispose()


def test_a_raw_statement_on_a_lost_connection_invalidates_it(pg: Database) -> None:
    from slotbroker.store.prebuilt import run_raw

    with pg.engine.connect() as conn:
        pid = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
        _terminate(pid)
        with pytest.raises(DBAPIError) as caught:
            run_raw(conn, "SELECT 1", ())
        assert caught.value.connection_invalidated
        assert conn.invalidated
    assert _backend_pid(pg) != pid  # the pool hands out a fresh connection
