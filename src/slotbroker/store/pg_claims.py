"""A claim on PostgreSQL in two round trips: ``BEGIN; lock; read`` and ``write; COMMIT``.

Why: through the driver a claim costs five round trips (the driver's own BEGIN, the provider lock, the
read of inventories and peak usage, the write, COMMIT), each a wake-up of both processes and some
Python in the driver; on loopback they were about a third of a claim's wall time. PostgreSQL's simple
query protocol runs several statements sent as one string, in order, each with its own snapshot (READ
COMMITTED), and a ``BEGIN`` inside the string keeps the transaction open after it. So the read still
runs *after* the lock is granted and sees every claim committed before it, exactly as when it is sent
on its own (docs/decisions/0005-claims-locking.md), and the checks between the two round trips are the
same Python as the general path's (``services/claims.py``).

The simple protocol takes no bind parameters, and planning the read costs more than running it (about
0.5 ms against 0.2 ms), so each statement is a server-side prepared statement and the strings only say
``EXECUTE name(literals)``. The literals are rendered here: integers as digits, NULL, and strings
through libpq's ``PQescapeLiteral``. The statements are the general path's own statements compiled for
PostgreSQL, so the SQL exists once; their PREPAREs go in a string of their own the first time a
connection needs them. They could vanish: the driver deallocates every prepared statement of a
connection whenever it rolls one back (its own plan cache may hold plans of dropped objects), so these
claims have a connection pool of their own (``Database.claims_engine``) where nothing else runs, and
this module rolls back with a plain ``ROLLBACK`` on the libpq connection, which leaves them in place.
A pooler in front may still move the session to another server connection: a statement found missing
answers ``invalid_sql_statement_name``, ``StalePrepared`` tells the caller to start the claim again,
and the next attempt asks the server what it has before preparing the rest.

The connection runs in the driver's autocommit mode for the duration (the strings carry their own
``BEGIN`` / ``COMMIT``); ``finish`` rolls back whatever is still open and restores the mode before the
connection goes back to the pool.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import pq
from sqlalchemy import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import PoolProxiedConnection

from slotbroker.store import claims as sql

PREPARED_KEY = "slotbroker_prepared"  # the connection record's info: names prepared on this connection
_PARAM = re.compile(r"%\((\w+)\)s")


@dataclass(frozen=True)
class Statement:
    """One prepared statement: its name, its PREPARE text, and its parameters in $1..$k order."""

    name: str
    prepare: str
    params: tuple[str, ...]
    fixed: dict[str, str]  # the literals of the compiled-in values (statuses, kinds), rendered once


def _constant(value: Any) -> str:
    """A compiled-in value as a literal: our own constants (ints, None, plain names), never input."""
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(int(value))
    text = str(value)
    if "\\" in text or not text.isprintable():
        raise ValueError(f"not a plain constant: {text!r}")
    return "'" + text.replace("'", "''") + "'"


def _statement(name: str, text: str, defaults: dict[str, Any]) -> Statement:
    order: list[str] = []

    def number(m: re.Match[str]) -> str:
        if m.group(1) not in order:
            order.append(m.group(1))
        return f"${order.index(m.group(1)) + 1}"

    body = _PARAM.sub(number, text).replace("%%", "%")
    fixed = {k: _constant(v) for k, v in defaults.items()}
    return Statement(name, f"PREPARE {name} AS {body}", tuple(order), fixed)


class Statements:
    """The claim's statements for one dialect, compiled on first use, one per (kind, n)."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.cache: dict[tuple[str, int], Statement] = {}

    def _compiled(self, kind: str, n: int, build: Callable[[int], Any]) -> Statement:
        key = (kind, n)
        found = self.cache.get(key)
        if found is None:
            compiled = build(n).compile(dialect=self.dialect, compile_kwargs={"render_postcompile": True})
            found = self.cache[key] = _statement(f"sb_{kind}_{n}", compiled.string, dict(compiled.params))
        return found

    def lock(self, n: int) -> Statement:
        return self._compiled("lock", n, sql.lock_statement)

    def state(self, n: int) -> Statement:
        return self._compiled("state", n, lambda k: sql.pair_state_statement(k, by_uuid=True))

    def write(self, n: int) -> Statement:
        key = ("write", n)
        found = self.cache.get(key)
        if found is None:  # n <= MAX_ITEMS, so the cache stays small
            found = self.cache[key] = _statement(f"sb_write_{n}", sql.pg_write_claim_sql(n), {})
        return found


class Session:
    """One claim's use of one pooled connection (``begin_read`` then ``write_commit``, or neither, then
    always ``finish``)."""

    def __init__(self, raw: PoolProxiedConnection, statements: Statements) -> None:
        self.raw = raw
        self.statements = statements
        conn = raw.dbapi_connection
        assert isinstance(conn, psycopg.Connection)
        self.conn: psycopg.Connection[Any] = conn
        self.escaping: pq.abc.Escaping = pq.Escaping(conn.pgconn)
        self.prepared: set[str] = raw.info.setdefault(PREPARED_KEY, set())
        if not self._idle():
            conn.pgconn.exec_(b"ROLLBACK")
        conn.autocommit = True

    # -- the two round trips --------------------------------------------------------------------------
    def begin_read(
        self,
        uuids: Sequence[str],
        pairs: Sequence[tuple[str, str]],
        start_s: int,
        end_s: int,
        now_s: int,
        n_items: int,
    ) -> tuple[dict[str, sql.LockedProvider], dict[sql.Pair, sql.PairState]]:
        """BEGIN, lock the providers named by ``uuids`` (id order) and read the state of each
        (provider uuid, class) in ``pairs``: ``sql.lock_providers`` and ``sql.pair_states`` at once.
        ``n_items``: how many allocation rows the write will have."""
        lock, state = self.statements.lock(len(uuids)), self.statements.state(len(pairs))
        write = self.statements.write(n_items)  # prepared now if need be, so the write is one round trip
        lock_args = {f"u{i}": u for i, u in enumerate(uuids)}
        state_args: dict[str, Any] = {"s": start_s, "e": end_s, "now": now_s}
        for i, (u, rc) in enumerate(pairs):
            state_args[f"p{i}"], state_args[f"c{i}"] = u, rc
        locked_rows, state_rows = self._run(
            [lock, state, write],
            ["BEGIN", self._execute(lock, lock_args), self._execute(state, state_args)],
        )
        return sql.locked_of(locked_rows), sql.states_of(state_rows)

    def write_commit(self, params: dict[str, Any], n: int) -> int:
        """Write the claim (``sql.write_claim``'s statement and parameters) and COMMIT; the consumer id."""
        write = self.statements.write(n)
        ((rows), *_) = self._run([write], [self._execute(write, params), "COMMIT"])
        ((consumer_id,),) = rows
        return int(consumer_id)

    def finish(self) -> None:
        """Roll back whatever is open, leave autocommit mode and give the connection back."""
        try:
            if not self.conn.closed:
                if not self._idle():
                    # libpq's own call: the driver's rollback() would deallocate the prepared statements
                    self.conn.pgconn.exec_(b"ROLLBACK")
                    if not self._idle():
                        raise psycopg.OperationalError("ROLLBACK did not end the transaction")
                self.conn.autocommit = False
        except psycopg.Error as exc:  # the connection is broken: the pool must not hand it out again
            self.raw.invalidate(exc)
        finally:
            self.raw.close()

    # -- helpers --------------------------------------------------------------------------------------
    def _idle(self) -> bool:
        return self.conn.info.transaction_status == pq.TransactionStatus.IDLE

    def _literal(self, value: Any) -> str:
        """A value of the request as a literal: libpq escapes every string (it knows the connection's
        encoding and ``standard_conforming_strings``)."""
        kind = type(value)
        if kind is int:
            return str(value)
        if value is None:
            return "NULL"
        if kind is bool:
            return "TRUE" if value else "FALSE"
        if isinstance(value, int):
            return str(int(value))
        text = value if isinstance(value, str) else str(value)  # timestamps: ISO 8601
        quoted: bytes = self.escaping.escape_literal(text.encode())
        return quoted.decode()

    def _execute(self, st: Statement, args: dict[str, Any]) -> str:
        literal, fixed = self._literal, st.fixed
        rendered = [literal(args[p]) if p in args else fixed[p] for p in st.params]
        return f"EXECUTE {st.name}({', '.join(rendered)})"

    def _run(self, used: Sequence[Statement], parts: list[str]) -> list[list[Any]]:
        """Send ``parts`` as one string (preceded by the PREPAREs this connection lacks); the rows of
        each statement that returned rows, in order. Errors are raised as SQLAlchemy ``DBAPIError``s,
        a lost connection invalidated first, as ``sql.run_raw`` does."""
        text = "; ".join(parts)
        cursor = self.conn.cursor()
        try:
            if any(st.name not in self.prepared for st in used):  # once per statement and connection
                cursor.execute("SELECT name FROM pg_prepared_statements", prepare=False)
                self.prepared.clear()
                self.prepared.update(str(name) for (name,) in cursor.fetchall())
                missing = [st for st in used if st.name not in self.prepared]
                if missing:
                    cursor.execute("; ".join(st.prepare for st in missing), prepare=False)
                    self.prepared.update(st.name for st in missing)
            cursor.execute(text, prepare=False)
            out: list[list[Any]] = []
            while True:
                result = cursor.pgresult
                if result is not None and result.status == pq.ExecStatus.TUPLES_OK:
                    out.append(list(cursor.fetchall()))
                if not cursor.nextset():
                    return out
        except psycopg.errors.InvalidSqlStatementName as exc:
            self.prepared.clear()
            raise StalePrepared(str(exc)) from exc
        except psycopg.Error as exc:
            raise wrap(self.statements.dialect, self.raw, exc, text) from exc
        finally:
            cursor.close()


class StalePrepared(Exception):
    """A statement this connection was thought to have prepared is gone; nothing was written."""


def wrap(dialect: Dialect, raw: PoolProxiedConnection, exc: psycopg.Error, text: str) -> DBAPIError:
    lost = bool(dialect.is_disconnect(exc, raw.dbapi_connection, None))  # type: ignore[arg-type]
    if lost:
        raw.invalidate(exc)
    wrapped = DBAPIError.instance(
        text, None, exc, psycopg.Error, connection_invalidated=lost, dialect=dialect
    )
    assert isinstance(wrapped, DBAPIError)
    return wrapped
