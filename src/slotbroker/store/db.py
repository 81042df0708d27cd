"""Engines and sessions for SQLite and PostgreSQL.

SQLite needs care to be correct under concurrency: pysqlite's implicit transactions start late and
deferred, so two writers can both read, then one fails to upgrade its lock. We switch pysqlite to
autocommit and emit ``BEGIN IMMEDIATE`` ourselves for write transactions (the SQLAlchemy-documented
recipe), which serialises writers at the start of the transaction; read-only units use a deferred
``BEGIN``. WAL lets readers proceed beside the writer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection
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
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


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

    def session(self, *, readonly: bool = False) -> Session:
        return (self._read if readonly else self._write)()

    def dispose(self) -> None:
        self.engine.dispose()
