"""Engines and sessions for SQLite and PostgreSQL.

SQLite needs care to be correct under concurrency: pysqlite's implicit transactions start late and
deferred, so two writers can both read, then one fails to upgrade its lock. We switch pysqlite to
autocommit and emit ``BEGIN IMMEDIATE`` ourselves for write transactions (the SQLAlchemy-documented
recipe), which serialises writers at the start of the transaction; read-only units use a deferred
``BEGIN``. WAL lets readers proceed beside the writer.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_URL = "sqlite:///./var/slotbroker.db"
READONLY = "slotbroker_readonly"


def database_url() -> str:
    return os.environ.get("SLOTBROKER_DATABASE_URL", DEFAULT_URL)


def normalise_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and use psycopg 3 for them."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_file(url: str) -> Path | None:
    prefix = "sqlite:///"
    if url.startswith(prefix) and ":memory:" not in url:
        return Path(url[len(prefix) :].split("?", 1)[0])
    return None


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = _sqlite_file(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        _make_sqlite_transactional(engine)
        return engine
    kwargs.setdefault("pool_size", _env_int("SLOTBROKER_DB_POOL_SIZE", 20))
    kwargs.setdefault("max_overflow", _env_int("SLOTBROKER_DB_MAX_OVERFLOW", 10))
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_when_idle(engine, IDLE_PING_S)
    return engine


IDLE_PING_S = 5.0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def _ping_when_idle(engine: Engine, idle_s: float) -> None:
    """Ping a pooled connection on checkout only if it sat idle for ``idle_s`` or more.

    ``pool_pre_ping`` pings on *every* checkout: a round trip per transaction, about a tenth of a claim.
    A connection used moments ago is almost surely alive; one idle for a while may have been cut (a
    database restart, a proxy's idle timeout), so that one is pinged, and a dead one is replaced before
    anyone uses it (raising ``DisconnectionError`` makes the pool retry with a fresh connection). A
    connection that dies while busy fails its transaction; the API answers 503 with Retry-After and the
    pool replaces the connection (SQLAlchemy invalidates it on a disconnect error).
    """

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < idle_s:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError(f"idle connection failed its ping: {exc}") from exc


def _make_sqlite_transactional(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        readonly = conn.get_execution_options().get(READONLY, False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


@dataclass
class Database:
    """One database: its engine and session factories for writing and for reading."""

    url: str
    engine: Engine = field(init=False)
    _write: sessionmaker[Session] = field(init=False)
    _read: sessionmaker[Session] = field(init=False)

    def __post_init__(self) -> None:
        self.url = normalise_url(self.url)
        self.engine = make_engine(self.url)
        self._write = sessionmaker(self.engine, expire_on_commit=False)
        self._read = sessionmaker(self.engine.execution_options(**{READONLY: True}), expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @cached_property
    def claims_engine(self) -> Engine:
        """PostgreSQL: a pool of its own for the two-round-trip claims (``store/claims/pg_two_trips.py``).

        Why apart: those claims keep server-side prepared statements on their connections, and the
        driver deallocates every prepared statement of a connection whenever it rolls a transaction
        back, which the general pool does all the time (every read-only unit of work ends so). Here
        only ``pg_two_trips`` runs, and it hands connections back idle, so theirs stay prepared. Sized
        by ``SLOTBROKER_CLAIM_POOL_SIZE`` (default 16, and half as many again in bursts)."""
        size = self.claim_pool_size
        return make_engine(self.url, pool_size=size, max_overflow=size // 2)

    @property
    def claim_pool_size(self) -> int:
        """The connections ``claims_engine`` keeps (``SLOTBROKER_CLAIM_POOL_SIZE``, default 16)."""
        return max(1, _env_int("SLOTBROKER_CLAIM_POOL_SIZE", 16))

    def session(self, *, readonly: bool = False) -> Session:
        return (self._read if readonly else self._write)()

    def dispose(self) -> None:
        self.engine.dispose()
        if "claims_engine" in self.__dict__:
            self.claims_engine.dispose()
