"""The calendar generation read that precedes every find-slot answer takes no write lock (issue 18).

On SQLite a plain connection begins with ``BEGIN IMMEDIATE`` (store/db.py: writers serialise at the start
of their transaction), so a generation read on one took the database's writer lock: concurrent searches
queued on each other and on every writer, sleeping in SQLite's busy back-off, for a read that needs no
lock. Under 16 closed-loop HTTP clients three quarters of the endpoint's samples waited there.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import Connection, event

from slotbroker.store import migrate
from slotbroker.store.db import Database
from slotbroker.store.repositories.snapshot import committed_generation


def test_the_generation_read_answers_while_a_writer_holds_the_sqlite_lock(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'gen.db'}")
    migrate.upgrade(db.engine)
    try:
        answered: list[int] = []
        with db.engine.connect() as writer:
            writer.exec_driver_sql("UPDATE calendar_state SET generation = generation")  # BEGIN IMMEDIATE
            reader = threading.Thread(target=lambda: answered.append(committed_generation(db.engine)))
            reader.start()
            reader.join(timeout=5)  # holding the lock, a BEGIN IMMEDIATE would wait 30 s (busy_timeout)
            assert not reader.is_alive(), "the generation read waited for the writer's lock"
            writer.rollback()
        reader.join()
        assert answered == [0]
    finally:
        db.dispose()


def test_the_generation_read_begins_a_deferred_transaction(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'gen.db'}")
    migrate.upgrade(db.engine)
    statements: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda _c, _cur, sql, *_: statements.append(sql))
    try:
        committed_generation(db.engine)
        assert [s for s in statements if s.startswith("BEGIN")] == ["BEGIN"]
    finally:
        db.dispose()


@pytest.mark.postgres
def test_the_generation_read_runs_outside_a_transaction_on_postgres(pg: Database) -> None:
    """Autocommit: the read is one round trip, not BEGIN, SELECT and ROLLBACK; and the pooled
    connection goes back to transactional mode for whoever takes it next."""
    autocommit: list[bool] = []

    def seen(conn: Connection, *_: object) -> None:
        autocommit.append(conn.connection.dbapi_connection.autocommit)  # type: ignore[union-attr]

    event.listen(pg.engine, "before_cursor_execute", seen)
    pg.engine.dispose()  # one pooled connection, reused below
    assert committed_generation(pg.engine) == 0
    assert autocommit == [True]
    event.remove(pg.engine, "before_cursor_execute", seen)
    with pg.engine.connect() as conn:
        assert conn.connection.dbapi_connection.autocommit is False  # type: ignore[union-attr]
        assert conn.exec_driver_sql("SHOW transaction_isolation").scalar_one() == "read committed"
