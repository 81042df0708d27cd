"""Statements compiled once and run on the DBAPI cursor, inside the session's transaction: the hot path
of the claim (``store/claims/general.py``) and of the lease's writes and hot reads
(``store/repositories/leases.py``, ``lease_event_rows.py``, ``store/calendar_changes.py``).

A one-row statement through SQLAlchemy's execution path (cache-key walk, parameter processing, result
metadata) costs several times what SQLite spends running it; ``run_compiled`` compiles each statement
once per (dialect, list length) and hands the SQL string to the driver (measured in
docs/decisions/0016-claims-in-two-round-trips.md, 0048-lease-writes-prebuilt.md and
0054-lease-reads-prebuilt.md). The parameters a call gives pass their types' bind processors (a datetime
is stored as SQLAlchemy stores it); constants compiled into the statement are not processed (keep them
ints, strings and NULLs). ``run_compiled`` answers raw tuples (for int, string and NULL columns);
``run_rows`` answers named rows through the columns' result processors (datetimes, booleans). Errors
still surface the SQLAlchemy way (``dbapi_error``); statement events (``before_cursor_execute``) do not
fire.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Dialect
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import visitors
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter

Build = Callable[[int], Any]  # a statement builder of ``statements.py``: list length -> statement


def fixed(stmt: Any) -> Build:
    """A builder of ``stmt`` whatever n (a statement over no list of keys). Make it once, at import:
    the builder is the cache's key."""

    def build(_n: int) -> Any:
        return stmt

    return build


def session_connection(session: Session) -> Connection:
    """The session's connection, with the session's pending ORM changes flushed first (what
    ``Session.execute`` would autoflush), so a statement run on it sees them as the ORM's would."""
    if session.new or session.deleted or session.dirty:
        session.flush()
    return session.connection()


class Prebuilt(NamedTuple):
    """A statement compiled for one dialect: its SQL and how to bind it (the compiler's own names)."""

    string: str
    positional: bool
    positiontup: tuple[str, ...]
    params: dict[str, Any]  # every parameter, placeholders where a call must give the value
    required: frozenset[str]  # the parameters every call gives
    processors: tuple[tuple[str, Callable[[Any], Any]], ...]  # the types' bind processors, by name


_COMPILED: dict[tuple[str, Build, int], Prebuilt] = {}


def compiled(dialect: Dialect, build: Build, n: int) -> Prebuilt:
    """``build(n)`` compiled for ``dialect``, once (n is at most ``MAX_ITEMS``: the cache stays small).
    Literal lists (``IN`` of constants) are compiled in; a required parameter (``bindparam("x")``,
    no placeholder value) must be given by every call (``run_compiled`` refuses one that leaves it out)."""
    key = (dialect.name, build, n)
    found = _COMPILED.get(key)
    if found is None:
        stmt = build(n)
        required = frozenset(
            b.key for b in visitors.iterate(stmt) if isinstance(b, BindParameter) and b.required
        )
        comp: SQLCompiler = stmt.compile(dialect=dialect)
        state = comp.construct_expanded_state(dict.fromkeys(required), escape_names=False)
        found = _COMPILED[key] = Prebuilt(
            state.statement,
            bool(comp.positional),
            tuple(state.positiontup or ()),
            dict(state.parameters),
            required,
            _processors(stmt, dialect),
        )
    return found


def _processors(stmt: Any, dialect: Dialect) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    """The bind processors of ``stmt``'s parameters that have one on ``dialect`` (a datetime on SQLite)."""
    out: dict[str, Callable[[Any], Any]] = {}
    for b in visitors.iterate(stmt):
        if isinstance(b, BindParameter) and not b.expanding:
            proc = b.type.dialect_impl(dialect).bind_processor(dialect)
            if proc is not None:
                out[b.key] = proc
    return tuple(out.items())


def run_compiled(conn: Connection, build: Build, n: int, params: dict[str, Any]) -> list[Any]:
    """Run ``build(n)`` with ``params`` on ``conn``'s DBAPI cursor, inside its transaction; the rows as
    tuples, unprocessed (ints, strings, NULLs as the driver gives them)."""
    comp = compiled(conn.dialect, build, n)
    return run_raw(conn, comp.string, _bound(comp, params))


Results = tuple[Callable[..., Any], tuple[tuple[int, Callable[[Any], Any]], ...]]
_RESULTS: dict[tuple[str, Build, int], Results] = {}


def run_rows(conn: Connection, build: Build, n: int, params: dict[str, Any]) -> list[Any]:
    """``run_compiled`` for a SELECT whose rows are read by column name or hold typed values (a
    datetime): each row a named tuple of the statement's columns, every value passed through its
    type's result processor, as ``Connection.execute`` would give it. The processors are SQLAlchemy's
    own, chosen (once per statement) from the driver's column types, as its result does."""
    comp = compiled(conn.dialect, build, n)
    key = (conn.dialect.name, build, n)
    found = _RESULTS.get(key)
    rows, description = _run_read(conn, comp.string, _bound(comp, params))
    if found is None:
        found = _RESULTS[key] = _results(build(n), conn.dialect, description)
    make, results = found
    if not results:
        return [make(*r) for r in rows]
    out = []
    for r in rows:
        values = list(r)
        for i, process in results:
            values[i] = process(values[i])
        out.append(make(*values))
    return out


def _results(stmt: Any, dialect: Dialect, description: Sequence[Any]) -> Results:
    """A SELECT's row type (its columns' keys) and the result processors its columns' types have on
    ``dialect`` for the driver's column types (``description``)."""
    columns = list(stmt.selected_columns)
    keys = [str(c.key) for c in columns]
    procs = tuple(
        (i, proc)
        for i, (c, d) in enumerate(zip(columns, description, strict=True))
        if (proc := c.type.dialect_impl(dialect).result_processor(dialect, d[1])) is not None
    )
    return _row_type(keys), procs


def _row_type(keys: Sequence[str]) -> Callable[..., Any]:
    """A named tuple of ``keys`` that, like SQLAlchemy's ``Row``, also answers ``_mapping``."""
    base = namedtuple("Row", keys, rename=True)  # type: ignore[misc]

    class Row(base):
        __slots__ = ()

        @property
        def _mapping(self) -> dict[str, Any]:
            return dict(self._asdict())

    return Row


def _run_read(conn: Connection, sql: str, params: Any) -> tuple[list[Any], Sequence[Any]]:
    """``run_raw``, with the cursor's description."""
    dbapi_conn = conn.connection
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(sql, params)
        return list(cursor.fetchall()), tuple(cursor.description)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise dbapi_error(conn.dialect, exc, sql, params, conn, dbapi_conn, cursor) from exc
    finally:
        cursor.close()


def run_raw(conn: Connection, sql: str, params: Any) -> list[Any]:
    """Run ``sql`` on the DBAPI cursor of ``conn`` (inside its transaction); the rows as tuples."""
    return _run(conn, sql, params, many=False)[0]


def _run(conn: Connection, sql: str, params: Any, *, many: bool) -> tuple[list[Any], int]:
    """``run_raw``, or (``many``) the driver's executemany over a list of parameter sets; the rows
    and the rowcount."""
    dbapi_conn = conn.connection
    cursor = dbapi_conn.cursor()
    try:
        if many:
            cursor.executemany(sql, params)
            return [], int(cursor.rowcount)
        cursor.execute(sql, params)
        rows = list(cursor.fetchall()) if cursor.description is not None else []
        return rows, int(cursor.rowcount)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise dbapi_error(conn.dialect, exc, sql, params, conn, dbapi_conn, cursor) from exc
    finally:
        cursor.close()


def _bound(comp: Prebuilt, params: dict[str, Any]) -> Any:
    """``params`` over the compiled placeholders, in the driver's form."""
    if not comp.required.issubset(params):
        raise TypeError(f"no value for the required parameters {sorted(comp.required.difference(params))}")
    values = {**comp.params, **params}
    for name, process in comp.processors:
        if name in params:
            values[name] = process(params[name])
    if comp.positional:
        return tuple(values[k] for k in comp.positiontup)
    return values


def run_counted(conn: Connection, build: Build, params: dict[str, Any], n: int = 0) -> int:
    """``run_compiled`` for a write whose answer is how many rows it touched (the rowcount)."""
    comp = compiled(conn.dialect, build, n)
    return _run(conn, comp.string, _bound(comp, params), many=False)[1]


def run_many(conn: Connection, build: Build, rows: Sequence[dict[str, Any]]) -> None:
    """``build(1)`` (one row's statement, compiled once) over every parameter set of ``rows``, in
    one executemany: the statement's text does not depend on how many rows there are."""
    if rows:
        comp = compiled(conn.dialect, build, 1)
        _run(conn, comp.string, [_bound(comp, r) for r in rows], many=True)


PAD_UP_TO = 256  # keys; beyond, statements are compiled for the exact count


def padded(n: int) -> int:
    """The list length a statement over n keys is compiled for: the next power of two, so a claim of
    any size reuses one of a few compiled statements (the keys are padded by repeating the last one:
    every such statement tests membership, where a repeated key changes nothing). Beyond
    ``PAD_UP_TO`` keys, n itself: padding a long OR chain could push it past SQLite's expression depth
    (1000) where the exact one fits, and such claims are rare enough to compile for."""
    if n > PAD_UP_TO:
        return n
    return 1 << max(n - 1, 0).bit_length()


def pad(keys: Sequence[Any]) -> list[Any]:
    """``keys`` (not empty) repeated at the end up to ``padded(len(keys))``."""
    return [*keys, *[keys[-1]] * (padded(len(keys)) - len(keys))]


def dbapi_error(
    dialect: Dialect,
    exc: Exception,
    sql: str,
    params: Any,
    owner: Connection | PoolProxiedConnection,
    dbapi_conn: Any,
    cursor: Any,
) -> DBAPIError:
    """The driver's ``exc`` as SQLAlchemy would raise it (a ``DBAPIError`` subclass: retries and the
    API's problem mapping branch on it), ``owner`` invalidated first if the connection was lost, exactly
    as SQLAlchemy itself would."""
    lost = bool(dialect.is_disconnect(exc, dbapi_conn, cursor))  # type: ignore[arg-type]
    if lost:
        owner.invalidate(exc)
    wrapped = DBAPIError.instance(
        sql, params, exc, dialect.loaded_dbapi.Error, connection_invalidated=lost, dialect=dialect
    )
    assert isinstance(wrapped, DBAPIError)
    return wrapped
