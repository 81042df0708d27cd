"""A claim on PostgreSQL in two round trips: ``BEGIN; lock; read`` and ``write; COMMIT``.

Why: through the driver a claim costs five round trips (the driver's own BEGIN, the provider lock, the
read of inventories and peak usage, the write, COMMIT), each a wake-up of both processes and some
Python in the driver (docs/decisions/0016-claims-in-two-round-trips.md). PostgreSQL's simple query
protocol runs several statements sent as one string, in order, each with its own snapshot (READ
COMMITTED), and a ``BEGIN`` inside the string keeps the transaction open after it. So the read still
runs *after* the lock is granted and sees every claim committed before it, exactly as when it is sent
on its own (docs/decisions/0005-claims-locking.md), and the decision between the two round trips is the
general path's (``domain/claim_rule.py: decide``).

The first string also asks whether the claim's project has a quota on any claimed class (one indexed
read of ``project_quotas``, no lock). If it does, the claim rolls back and the caller takes the general
path, which locks those quota rows before checking them, so concurrent claims of one project cannot
both pass a limit; projects without quotas never pay more than that read.

The steps speak to libpq through psycopg's public ``pq`` layer (no cursor and its per-result
machinery), written once as generators that yield the socket whenever they must wait;
``ClaimService.claim`` drives them from a worker thread (``poll``), ``ClaimService.claim_async`` from
the event loop (the loop's reader), so an API claim needs no thread at all.

The simple protocol takes no bind parameters, and planning the read costs more than running it, so each
statement is a server-side prepared statement and the strings only say ``EXECUTE name(literals)``. The
literals are rendered here: integers as digits, NULL, and strings through libpq's ``PQescapeLiteral``.
The statements are ``statements.py``'s, compiled by SQLAlchemy for PostgreSQL, so the SQL exists once;
their PREPAREs go in a string of their own the first time a connection needs them. They could vanish:
the driver deallocates every prepared statement of a connection whenever it rolls one back (its own
plan cache may hold plans of dropped objects), so these claims have a connection pool of their own
(``Database.claims_engine``) where nothing else runs, and this module rolls back with a plain
``ROLLBACK`` on the libpq connection, which leaves them in place. A pooler in front may still move the
session to another server connection: a statement found missing answers ``invalid_sql_statement_name``,
``StalePrepared`` tells the caller to start the claim again, and the next attempt asks the server what
it has before preparing the rest.

The connection runs in the driver's autocommit mode for the duration (the strings carry their own
``BEGIN`` / ``COMMIT``); ``finish`` rolls back whatever is still open and restores the mode before the
connection goes back to the pool.
"""

from __future__ import annotations

import asyncio
import re
import select
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import pq
from sqlalchemy import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import PoolProxiedConnection

from slotbroker.domain.claim_rule import LockedProvider, Pair, PairState, Write
from slotbroker.store.claims import statements as st
from slotbroker.store.models import calendar_shard, utcnow
from slotbroker.store.prebuilt import compiled, dbapi_error

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
            comp = compiled(self.dialect, build, n)
            found = self.cache[key] = _statement(f"sb_{kind}_{n}", comp.string, dict(comp.params))
        return found

    def lock(self, n: int) -> Statement:
        return self._compiled("lock", n, st.lock_statement)

    def state(self, n: int) -> Statement:
        return self._compiled("state", n, _state_by_uuid)

    def quota(self, n: int) -> Statement:
        return self._compiled("quota", n, st.quota_probe_statement)

    def write(self, n: int) -> Statement:
        return self._compiled("write", n, st.write_statement)


def _state_by_uuid(n: int) -> Any:
    return st.pair_state_statement(n, by_uuid=True)


@dataclass(frozen=True)
class Read:
    """What a claim's first round trip reads: the providers to lock (``uuids``), the (provider uuid,
    class) ``pairs`` to read over [start_s, end_s), and whether ``project`` has a quota on any of
    ``classes``; ``n_items``: how many allocation rows the write will have."""

    uuids: Sequence[str]
    pairs: Sequence[tuple[str, str]]
    start_s: int
    end_s: int
    now_s: int
    n_items: int
    project: str
    classes: Sequence[str]


@dataclass(frozen=True)
class Found:
    locked: dict[str, LockedProvider]
    state: dict[Pair, PairState]
    quota: bool  # the project has a quota on one of the classes: the general path must check it


Rows = list[tuple[str | None, ...]]
Step = Generator[int, None, Any]  # yields the socket to wait on until readable; returns the answer


class Session:
    """One claim's use of one pooled connection (``begin_read`` then ``write_commit``, or neither, then
    always ``finish``; each also as ``..._async``).

    The steps are written once, as generators that talk to libpq and yield its socket whenever they
    must wait for the server; ``_sync`` waits with ``poll`` (a worker thread), ``_async`` with the
    event loop's reader (the claim runs on the loop, no thread hop). Rows come back as text, as
    PostgreSQL sends them; ``statements.locked_of`` and ``statements.states_of`` convert them.
    """

    def __init__(self, raw: PoolProxiedConnection, statements: Statements) -> None:
        self.raw = raw
        self.statements = statements
        conn = raw.dbapi_connection
        assert isinstance(conn, psycopg.Connection)
        self.conn: psycopg.Connection[Any] = conn
        self.pgconn: pq.abc.PGconn = conn.pgconn
        self.escaping: pq.abc.Escaping = pq.Escaping(conn.pgconn)
        self.prepared: set[str] = raw.info.setdefault(PREPARED_KEY, set())
        if not self._idle():
            self.pgconn.exec_(b"ROLLBACK")
        conn.autocommit = True

    # -- the two round trips --------------------------------------------------------------------------
    def begin_read(self, read: Read) -> Found:
        """BEGIN, lock the providers named by ``read.uuids`` (id order), read the state of each
        (provider uuid, class) in ``read.pairs`` over [s, e) and whether the project has a quota on
        any of ``read.classes``: ``general.lock_providers``, ``general.pair_states`` and the quota
        probe at once."""
        return _sync(self._read(read))  # type: ignore[no-any-return]

    async def begin_read_async(self, read: Read) -> Found:
        return await _async(self._read(read))  # type: ignore[no-any-return]

    def write_commit(self, write: Write) -> int:
        """Write the claim (``statements.write_statement``) and COMMIT; the consumer id."""
        return int(_sync(self._write(write)))

    async def write_commit_async(self, write: Write) -> int:
        return int(await _async(self._write(write)))

    def finish(self) -> None:
        """Roll back whatever is open, leave autocommit mode and give the connection back."""
        self._finish(lambda: _sync(self._exchange("ROLLBACK")))

    async def finish_async(self) -> None:
        rolled_back = None
        if not self.conn.closed and self._in_transaction():
            try:
                await _async(self._exchange("ROLLBACK"))
            except psycopg.Error as exc:
                rolled_back = exc
        self._finish(lambda: None, rolled_back)

    # -- the steps ------------------------------------------------------------------------------------
    def _read(self, read: Read) -> Step:
        prep = self.statements
        lock, state, quota = (
            prep.lock(len(read.uuids)),
            prep.state(len(read.pairs)),
            prep.quota(len(read.classes)),
        )
        write = prep.write(read.n_items)  # prepared now if need be, so the write is one round trip
        lock_args = st.lock_params(read.uuids)
        state_args = st.pair_params(read.pairs, read.start_s, read.end_s, read.now_s)
        quota_args = st.quota_probe_params(read.project, read.classes)
        locked_rows, state_rows, quota_rows = yield from self._run(
            [lock, state, quota, write],
            [
                "BEGIN",
                self._execute(lock, lock_args),
                self._execute(state, state_args),
                self._execute(quota, quota_args),
            ],
        )
        return Found(st.locked_of(locked_rows), st.states_of(state_rows), bool(quota_rows))

    def _write(self, write: Write) -> Step:
        prepared = self.statements.write(len(write.rows))
        params = st.write_params(write.consumer, write.rows, calendar_shard(write.shard_key), utcnow())
        (rows,) = yield from self._run([prepared], [self._execute(prepared, params), "COMMIT"])
        ((consumer_id,),) = rows
        return consumer_id

    def _run(self, used: Sequence[Statement], parts: list[str]) -> Step:
        """Send ``parts`` as one string (after the PREPAREs this connection lacks); the rows of each
        statement that returned rows, in order. Errors are raised as SQLAlchemy ``DBAPIError``s, a lost
        connection invalidated first (``prebuilt.dbapi_error``)."""
        text = "; ".join(parts)
        try:
            if any(one.name not in self.prepared for one in used):  # once per statement and connection
                (names,) = yield from self._exchange("SELECT name FROM pg_prepared_statements")
                self.prepared.clear()
                self.prepared.update(str(name) for (name,) in names)
                missing = [one for one in used if one.name not in self.prepared]
                if missing:
                    yield from self._exchange("; ".join(one.prepare for one in missing))
                    self.prepared.update(one.name for one in missing)
            return (yield from self._exchange(text))
        except psycopg.errors.InvalidSqlStatementName as exc:
            self.prepared.clear()
            raise StalePrepared(str(exc)) from exc
        except psycopg.Error as exc:
            dialect, raw = self.statements.dialect, self.raw
            raise dbapi_error(dialect, exc, text, None, raw, raw.dbapi_connection, None) from exc

    def _exchange(self, text: str) -> Step:
        """One simple-protocol query: the rows of each result that has rows; the first error raised
        after every result has been read (libpq must be drained before the next query)."""
        pgconn = self.pgconn
        pgconn.send_query(text.encode())
        out: list[Rows] = []
        error: psycopg.Error | None = None
        while True:
            while pgconn.is_busy():
                yield pgconn.socket
                pgconn.consume_input()
            result = pgconn.get_result()
            if result is None:
                break
            if result.status == pq.ExecStatus.TUPLES_OK:
                out.append(_rows(result))
            elif result.status == pq.ExecStatus.FATAL_ERROR and error is None:
                error = _error(result)
        if error is not None:
            raise error
        return out

    def _finish(self, rollback: Callable[[], Any], failed: psycopg.Error | None = None) -> None:
        try:
            if failed is not None:
                raise failed
            if not self.conn.closed:
                if self.conn.info.transaction_status == pq.TransactionStatus.ACTIVE:
                    raise psycopg.OperationalError("a query was abandoned mid-flight")
                if self._in_transaction():
                    rollback()  # libpq's own call: the driver's rollback() would drop the statements
                    if not self._idle():
                        raise psycopg.OperationalError("ROLLBACK did not end the transaction")
                self.conn.autocommit = False
        except (psycopg.Error, DBAPIError) as exc:  # a broken connection never goes back to the pool
            self.raw.invalidate(exc)
        finally:
            self.raw.close()

    # -- helpers --------------------------------------------------------------------------------------
    def _idle(self) -> bool:
        return self.conn.info.transaction_status == pq.TransactionStatus.IDLE

    def _in_transaction(self) -> bool:
        status = self.conn.info.transaction_status
        return status in (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR)

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

    def _execute(self, stmt: Statement, args: dict[str, Any]) -> str:
        literal, fixed = self._literal, stmt.fixed
        rendered = [literal(args[p]) if p in args else fixed[p] for p in stmt.params]
        return f"EXECUTE {stmt.name}({', '.join(rendered)})"


def _rows(result: pq.abc.PGresult) -> Rows:
    get = result.get_value
    return [
        tuple(None if (v := get(i, j)) is None else bytes(v).decode() for j in range(result.nfields))
        for i in range(result.ntuples)
    ]


def _error(result: pq.abc.PGresult) -> psycopg.Error:
    """The driver's exception class for the result's SQLSTATE (retries branch on it)."""
    state = result.error_field(pq.DiagnosticField.SQLSTATE)
    message = bytes(result.error_message or b"").decode(errors="replace").strip()
    try:
        cls = psycopg.errors.lookup(bytes(state).decode()) if state else psycopg.DatabaseError
    except KeyError:
        cls = psycopg.DatabaseError
    return cls(message)


def _wait_readable(fd: int) -> None:
    """Block this thread (not the others: the GIL is released) until ``fd`` is readable. ``poll``, not
    ``select``: a busy server's sockets can be numbered past select's limit of 1024."""
    if hasattr(select, "poll"):
        waiter = select.poll()
        waiter.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
        waiter.poll()
    else:  # Windows
        select.select([fd], [], [])


def _sync(step: Step) -> Any:
    """Run ``step`` in this thread, waiting on the socket between its steps."""
    try:
        fd = next(step)
        while True:
            _wait_readable(fd)
            fd = step.send(None)
    except StopIteration as done:
        return done.value


async def _async(step: Step) -> Any:
    """Run ``step`` on the running event loop, waiting on the socket with the loop's reader."""
    loop = asyncio.get_running_loop()
    try:
        fd = next(step)
        while True:
            ready = loop.create_future()

            def wake(ready: asyncio.Future[None] = ready) -> None:
                if not ready.done():
                    ready.set_result(None)

            loop.add_reader(fd, wake)
            try:
                await ready
            finally:
                loop.remove_reader(fd)
            fd = step.send(None)
    except StopIteration as done:
        return done.value


class StalePrepared(Exception):
    """A statement this connection was thought to have prepared is gone; nothing was written."""
