"""What a unit of work costs before any statement of a use case: the floor under every service call.

``PYTHONPATH=src python bench/transaction_floor.py [--calls 3000]``

One JSON object, process CPU per call (ms), on a fresh migrated SQLite file as the replay uses
(decision 0055 reads the 60-second target of issue 16 against these): a unit of work that only takes its
connection, read-only and writing (with its COMMIT); a writing one that also reads the calendar
generation (one compiled statement on the cursor); SQLAlchemy Core's ``engine.begin()`` with one driver
statement; and, for scale, the bare ``sqlite3`` module (BEGIN IMMEDIATE, five inserts, a select, COMMIT).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from slotbroker.store import migrate
from slotbroker.store.db import Database
from slotbroker.store.unit_of_work import UnitOfWork


def per_call_ms(fn: Callable[[], None], calls: int) -> float:
    fn()  # warm: first checkout, compiled statements
    c0 = time.process_time()
    for _ in range(calls):
        fn()
    return round(1000 * (time.process_time() - c0) / calls, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="slotbroker-floor-") as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'floor.db'}")
        migrate.upgrade(db.engine)

        def read() -> None:
            with UnitOfWork(db, readonly=True) as uow:
                uow.session.connection()

        def write() -> None:
            with UnitOfWork(db) as uow:
                uow.session.connection()
                uow.commit()

        def write_generation() -> None:
            with UnitOfWork(db) as uow:
                uow.calendar.generation()
                uow.commit()

        def core() -> None:
            with db.engine.begin() as conn:
                conn.exec_driver_sql("SELECT 1").first()

        con = sqlite3.connect(Path(tmp) / "bare.db", isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute("CREATE TABLE a (id INTEGER PRIMARY KEY, x INT, y INT)")

        def bare() -> None:
            con.execute("BEGIN IMMEDIATE")
            for i in range(5):
                con.execute("INSERT INTO a (x, y) VALUES (?, ?)", (i, i))
            con.execute("SELECT count(*) FROM a WHERE x = 1").fetchone()
            con.execute("COMMIT")

        out = {
            "calls": args.calls,
            "unit_of_work_read_ms": per_call_ms(read, args.calls),
            "unit_of_work_write_ms": per_call_ms(write, args.calls),
            "unit_of_work_write_generation_ms": per_call_ms(write_generation, args.calls),
            "core_transaction_ms": per_call_ms(core, args.calls),
            "bare_sqlite3_write_ms": per_call_ms(bare, args.calls),
        }
        con.close()
        db.engine.dispose()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
