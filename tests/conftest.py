"""Shared fixtures: a migrated database on SQLite and on real PostgreSQL, the app, tokens.

PostgreSQL tests use 127.0.0.1:5432 database ``test`` (override with SLOTBROKER_TEST_PG_URL). Without
it they are skipped and the summary says how many; with CI=true an unreachable PostgreSQL is an error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from slotbroker.api.app import create_app
from slotbroker.config import Settings
from slotbroker.services.access.tokens import Role, TokenService
from slotbroker.store import migrate
from slotbroker.store.db import Database

PG_BASE_URL = os.environ.get("SLOTBROKER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
# Each pytest process works in a schema of its own, so two runs at once (or a developer's run beside CI)
# never wipe each other's tables. Every connection made with PG_URL, in any process, lands in it.
PG_SCHEMA = f"sb_test_{os.getpid()}"
PG_URL = f"{PG_BASE_URL}{'&' if '?' in PG_BASE_URL else '?'}options=-csearch_path%3D{PG_SCHEMA}"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TRACES = Path(__file__).resolve().parents[1].parent / "shared" / "traces"
_pg_skipped = 0
_pg_state: dict[str, str | None] = {}


def _pg_unavailable() -> str | None:
    """None when PostgreSQL answers, else why not (checked once per session)."""
    if "why" not in _pg_state:
        try:
            engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
            _pg_state["why"] = None
        except Exception as exc:
            _pg_state["why"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return _pg_state["why"]


def require_postgres() -> None:
    global _pg_skipped
    why = _pg_unavailable()
    if why is None:
        return
    if IN_CI:
        pytest.fail(f"PostgreSQL at {PG_URL} is required when CI=true: {why}")
    _pg_skipped += 1
    pytest.skip(f"PostgreSQL unavailable ({why}); set CI=true to make this an error")


def reset_postgres(url: str = PG_URL) -> None:
    """Empty this process's schema (``url`` is accepted for callers that pass PG_URL explicitly)."""
    del url
    engine = create_engine(PG_BASE_URL)
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {PG_SCHEMA}"))
    engine.dispose()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _pg_state.get("why", "unchecked") is None:
        engine = create_engine(PG_BASE_URL)
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
        engine.dispose()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _pg_skipped:
        terminalreporter.write_line(f"PostgreSQL tests skipped: {_pg_skipped} (PostgreSQL unavailable)")


@pytest.fixture(autouse=True)
def _forget_fastapi_endpoints() -> Iterator[None]:
    """After each test, empty FastAPI's module-level caches keyed by endpoint and dependency callables
    (``fastapi.dependencies.models``: 4096 entries each). ``create_app`` defines endpoints as closures
    over its app, so those caches kept the last few dozen apps of the run alive, with their services,
    calendar indexes and SQLAlchemy metadata: millions of objects that every full collection walks. A
    server builds one app, for which the caches are meant."""
    yield
    forget_fastapi_endpoints()


def forget_fastapi_endpoints() -> None:
    """Empty FastAPI's caches keyed by endpoint and dependency callables (see the fixture above)."""
    models = sys.modules.get("fastapi.dependencies.models")
    for value in list(vars(models).values()) if models is not None else ():
        clear = getattr(value, "cache_clear", None)
        if callable(clear):
            clear()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL: one SQLite file, or the PostgreSQL test database wiped clean."""
    if request.param == "postgres":
        require_postgres()
        reset_postgres()
        return PG_URL
    return f"sqlite:///{tmp_path}/slotbroker.db"


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    migrate.upgrade(database.engine)
    yield database
    database.dispose()


@pytest.fixture
def pg() -> Iterator[Database]:
    """A migrated PostgreSQL database in this process's schema, for PostgreSQL-only tests (modules with
    more to set up define their own ``pg``)."""
    require_postgres()
    reset_postgres()
    db = Database(PG_URL)
    migrate.upgrade(db.engine)
    yield db
    db.dispose()


@pytest.fixture
def app(db: Database) -> FastAPI:
    # The lease event loop and the planner's pool stay off here: tests that need them drive `tick()` or
    # build their own app with planner_workers set.
    settings = Settings(
        database_url=db.url,
        migrate_on_start=False,
        rate_per_s=10_000,
        rate_burst=10_000,
        event_loop_interval_s=0,
        planner_workers=0,
    )
    return create_app(settings, db=db)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def _token(app: FastAPI, role: Role, project: str = "demo") -> dict[str, str]:
    secret = TokenService(app.state.services.db).create(project=project, role=role, name=f"test-{role.value}")
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def admin(app: FastAPI) -> dict[str, str]:
    """Authorization header of an admin token."""
    return _token(app, Role.ADMIN)


@pytest.fixture
def operator(app: FastAPI) -> dict[str, str]:
    return _token(app, Role.OPERATOR)


@pytest.fixture
def user(app: FastAPI) -> dict[str, str]:
    return _token(app, Role.USER, project="science")
