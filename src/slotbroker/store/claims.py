"""The SQL of claims: provider locks, the peak-overlap query, VLAN holders, inserts and releases.

Every function runs inside the caller's transaction (a ``Session`` from a ``UnitOfWork``) and speaks
SQLAlchemy Core against the tables, not ORM objects: a claim is a handful of statements and the ORM's
per-row bookkeeping would cost more than the database work. The statements are built once, with bind
parameters (``expanding`` for the IN lists), so SQLAlchemy's compiled cache serves every call.

Usage ("live" allocations) means: rows of consumers that are neither in a freeing status
(``FREEING_STATUSES``) nor holds whose ``expires_s <= now``. The same SQL runs on SQLite and PostgreSQL;
``FOR UPDATE`` is rendered only on PostgreSQL (SQLite's ``BEGIN IMMEDIATE`` already serialises writers).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    String,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter

from slotbroker.domain.claims import FREEING_STATUSES, RELEASE_STATUSES, ConsumerKind, ConsumerStatus
from slotbroker.domain.inventory import capacity_of, unit_problem
from slotbroker.store.models import (
    AllocationRow,
    CalendarStateRow,
    ConsumerRow,
    FacilityPortRow,
    InventoryRow,
    ProjectQuotaRow,
    ProviderRow,
    calendar_shard,
    utcnow,
)
from slotbroker.store.repositories.usage import live_consumer

P = cast(Table, ProviderRow.__table__)
I = cast(Table, InventoryRow.__table__)  # noqa: E741 - the inventories table, as in SQL
A = cast(Table, AllocationRow.__table__)
C = cast(Table, ConsumerRow.__table__)
FP = cast(Table, FacilityPortRow.__table__)
Q = cast(Table, ProjectQuotaRow.__table__)

Pair = tuple[int, str]  # (provider_id, resource_class)

_FREEING = sorted(str(s) for s in FREEING_STATUSES)
_RELEASED = sorted(str(s) for s in RELEASE_STATUSES)


def run_raw(conn: Connection, sql: str, params: Any) -> list[Any]:
    """Run ``sql`` on the DBAPI cursor of ``conn`` (inside its transaction) and return the rows as tuples.

    Why: SQLAlchemy builds result metadata for every textual statement (``exec_driver_sql`` has no
    compiled-statement cache to take it from), about a tenth of a claim's CPU for rows we read by
    position anyway. Errors still surface the SQLAlchemy way: a ``DBAPIError`` subclass (retries and the
    API's problem mapping depend on it), and a lost connection is invalidated first, exactly as
    SQLAlchemy itself would. Statement events (``before_cursor_execute``) do not fire for these.
    """
    dialect = conn.dialect
    dbapi_conn = conn.connection
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description is not None else []
    except dialect.loaded_dbapi.Error as exc:
        lost = bool(dialect.is_disconnect(exc, dbapi_conn, cursor))
        if lost:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            sql, params, exc, dialect.loaded_dbapi.Error, connection_invalidated=lost, dialect=dialect
        ) from exc
    finally:
        cursor.close()


class _Precompiled:
    """A hot statement compiled once per (dialect, list length) to a plain SQL string and run on the
    DBAPI cursor (``run_raw``): no per-call SQLAlchemy compilation, cache-key walk, expanding-IN rendering
    or result metadata (about 0.1 ms of CPU per statement, a few per claim). For int and str parameters
    only (no bind processors run). Lists are given as n numbered bind parameters built by ``build(n)``;
    every bind parameter gets a placeholder value so that the literal ones can be compiled in. The cache
    holds one entry per (dialect, n); n is at most ``MAX_ITEMS`` (a claim's items), so it stays small.
    """

    def __init__(self, build: Callable[[int], Any]) -> None:
        self.build = build
        self.cache: dict[tuple[str, int], tuple[str, dict[str, Any], tuple[str, ...] | None]] = {}

    def execute(self, conn: Connection, n: int, params: dict[str, Any]) -> Sequence[Any]:
        key = (conn.dialect.name, n)
        hit = self.cache.get(key)
        if hit is None:
            compiled = self.build(n).compile(
                dialect=conn.dialect, compile_kwargs={"render_postcompile": True}
            )
            names = tuple(compiled.positiontup or ()) if compiled.positional else None
            hit = self.cache[key] = (compiled.string, dict(compiled.params), names)
        sql, defaults, names = hit
        values = {**defaults, **params}
        return run_raw(conn, sql, tuple(values[k] for k in names) if names is not None else values)


def _int(name: str) -> BindParameter[int]:
    return bindparam(name, 0, type_=BigInteger)


def _str(name: str) -> BindParameter[str]:
    return bindparam(name, "", type_=String)


@dataclass(frozen=True)
class LockedProvider:
    id: int
    uuid: str
    name: str
    kind: str


@dataclass(frozen=True)
class InventoryFacts:
    total: int
    reserved: int
    min_unit: int
    max_unit: int
    step_size: int
    allocation_ratio: float

    @property
    def capacity(self) -> int:
        return capacity_of(self.total, self.reserved, self.allocation_ratio)

    def amount_problem(self, amount: int) -> str | None:
        return unit_problem(amount, self.min_unit, self.max_unit, self.step_size)


@dataclass(frozen=True)
class Usage:
    """Peak live usage of one (provider, class) over the claim's interval, and whether expired holds
    still have rows there (the claim reaps them so the table itself never shows an overbooking)."""

    peak: int
    expired_holds: bool


def _is_expired_hold(now: Any) -> ColumnElement[bool]:
    return and_(
        C.c.kind == ConsumerKind.HOLD.value,
        C.c.expires_s.is_not(None),
        C.c.expires_s <= now,
        C.c.status.not_in(_FREEING),
    )


_is_live = live_consumer


# -- locking -------------------------------------------------------------------------------------------------


# Ordered by id so that two claims touching the same providers lock them in the same order: no deadlock.
# PostgreSQL's LockRows node sits above the Sort, so rows are locked in exactly this order.
def lock_statement(n: int) -> Any:
    """Lock n providers by uuid (:u0 ...), in id order; their id, uuid, name and kind."""
    return (
        select(P.c.id, P.c.uuid, P.c.name, P.c.kind)
        .where(or_(*(P.c.uuid == _str(f"u{i}") for i in range(n))))
        .order_by(P.c.id)
        .with_for_update()
    )


_LOCK_BY_UUID = _Precompiled(lock_statement)


def quota_probe_statement(n: int) -> Any:
    """Whether project :project has a quota on any of n classes (:q0 ...): at most one row. The claim's
    fast path asks this in its first round trip and leaves quota'd claims to the general path, which
    locks the quota rows (``QuotaService.check_in``)."""
    return (
        select(Q.c.resource_class)
        .where(Q.c.project == _str("project"), or_(*(Q.c.resource_class == _str(f"q{i}") for i in range(n))))
        .limit(1)
    )


_LOCK_BY_ID = (
    select(P.c.id).where(P.c.id.in_(bindparam("ids", expanding=True))).order_by(P.c.id).with_for_update()
)


def lock_providers(session: Session, uuids: Collection[str]) -> dict[str, LockedProvider]:
    """Lock the providers named by ``uuids`` (PostgreSQL: row locks in id order, held to commit).

    Returns the ones that exist, by uuid. Anything read *after* this call sees every claim that held
    these locks before us (READ COMMITTED takes a fresh snapshot per statement).
    """
    if not uuids:
        return {}
    wanted = sorted(set(uuids))
    rows = _LOCK_BY_UUID.execute(
        session.connection(), len(wanted), {f"u{i}": u for i, u in enumerate(wanted)}
    )
    return locked_of(rows)


def locked_of(rows: Iterable[Sequence[Any]]) -> dict[str, LockedProvider]:
    """``lock_statement``'s rows, by uuid."""
    return {str(u): LockedProvider(int(i), str(u), str(name), str(kind)) for i, u, name, kind in rows}


def lock_provider_ids(session: Session, ids: Collection[int]) -> list[int]:
    """The same lock by provider id, for other writers (e.g. an inventory shrink) that must serialise
    with claims before they read usage."""
    if not ids:
        return []
    return [int(i) for i in session.connection().scalars(_LOCK_BY_ID, {"ids": sorted(set(ids))})]


# -- peak overlapping usage ---------------------------------------------------------------------------------


def _pairs_match(provider_id: Any, resource_class: Any, n: int, by_uuid: bool = False) -> ColumnElement[bool]:
    """(provider_id, resource_class) is one of the n pairs :p0/:c0 ... (portable: no row-value IN).
    ``by_uuid``: :p0 ... are provider uuids, looked up in the statement (when the ids are not known yet:
    the PostgreSQL claim sends this read in the same round trip as the lock, ``store/pg_claims.py``)."""

    def provider(i: int) -> Any:
        if by_uuid:
            return select(P.c.id).where(P.c.uuid == _str(f"p{i}")).scalar_subquery()
        return _int(f"p{i}")

    return or_(*(and_(provider_id == provider(i), resource_class == _str(f"c{i}")) for i in range(n)))


def _pair_params(pairs: Sequence[Pair]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, (pid, rc) in enumerate(pairs):
        out[f"p{i}"], out[f"c{i}"] = pid, rc
    return out


def _peak_statement(n: int, by_uuid: bool = False) -> Any:
    """Peak live usage per touched (provider, class) over [:s, :e), in one statement.

    Usage is a step function that only rises at an allocation's start, so its maximum over [s, e) is
    reached at s or at a start inside (s, e). Each allocation overlapping [s, e) becomes a +amount event
    at max(start, s) and, if it ends inside, a -amount event at its end; a running SUM over time per
    (provider, class) gives the usage at each event time. The window's default frame (RANGE ... CURRENT
    ROW) includes every event at the same time, so ends and starts at one instant net out before the
    value is read: exactly the half-open semantics. O(n log n) in the overlapping allocations.

    Expired holds and freed consumers contribute 0 but still produce a row, flagged, so the caller knows
    whether there is anything to reap.
    """
    s, e, now = _int("s"), _int("e"), _int("now")
    live = _is_live(now)
    ov = (
        select(
            A.c.provider_id,
            A.c.resource_class,
            case((live, A.c.amount), else_=0).label("amount"),
            A.c.start_s,
            A.c.end_s,
            case((_is_expired_hold(now), 1), else_=0).label("dead"),
        )
        .select_from(A.join(C, C.c.id == A.c.consumer_id))
        .where(
            _pairs_match(A.c.provider_id, A.c.resource_class, n, by_uuid),
            A.c.start_s < e,
            A.c.end_s > s,
        )
        .cte("ov")
    )
    starts = select(
        ov.c.provider_id,
        ov.c.resource_class,
        case((ov.c.start_s > s, ov.c.start_s), else_=s).label("t"),
        ov.c.amount.label("d"),
        ov.c.dead,
    )
    ends = select(
        ov.c.provider_id,
        ov.c.resource_class,
        ov.c.end_s.label("t"),
        (literal(0) - ov.c.amount).label("d"),
        literal(0).label("dead"),
    ).where(ov.c.end_s < e, ov.c.amount > 0)
    ev = union_all(starts, ends).subquery("ev")
    run = select(
        ev.c.provider_id,
        ev.c.resource_class,
        func.sum(ev.c.d)
        .over(partition_by=(ev.c.provider_id, ev.c.resource_class), order_by=ev.c.t)
        .label("u"),
        ev.c.dead,
    ).subquery("run")
    return select(
        run.c.provider_id,
        run.c.resource_class,
        func.max(run.c.u).label("peak"),
        func.max(run.c.dead).label("dead"),
    ).group_by(run.c.provider_id, run.c.resource_class)


_PEAK = _Precompiled(_peak_statement)


def peak_usage(
    session: Session, pairs: Iterable[Pair], start_s: int, end_s: int, now_s: int
) -> dict[Pair, Usage]:
    """Peak live usage over [start_s, end_s) of each (provider, class) in ``pairs``; missing: none."""
    wanted = sorted(set(pairs))
    if not wanted:
        return {}
    params = {**_pair_params(wanted), "s": start_s, "e": end_s, "now": now_s}
    rows = _PEAK.execute(session.connection(), len(wanted), params)
    return {(int(p), str(rc)): Usage(max(int(peak or 0), 0), bool(dead)) for p, rc, peak, dead in rows}


@dataclass(frozen=True)
class PairState:
    """What a claim needs to know about one touched (provider, class): its inventory, the port's VLAN
    ranges (facility ports only), and the peak live usage over the claim's interval."""

    inventory: InventoryFacts
    vlans: str | None
    usage: Usage


def pair_state_statement(n: int, by_uuid: bool = False) -> Any:
    """The statement of ``pair_states`` for n pairs (by provider id, or by uuid: see ``_pairs_match``)."""
    pk = _peak_statement(n, by_uuid).subquery("pk")
    return (
        select(
            I.c.provider_id,
            I.c.resource_class,
            I.c.total,
            I.c.reserved,
            I.c.min_unit,
            I.c.max_unit,
            I.c.step_size,
            I.c.allocation_ratio,
            FP.c.vlans,
            pk.c.peak,
            pk.c.dead,
        )
        .select_from(
            I.outerjoin(FP, FP.c.provider_id == I.c.provider_id).outerjoin(
                pk, and_(pk.c.provider_id == I.c.provider_id, pk.c.resource_class == I.c.resource_class)
            )
        )
        .where(_pairs_match(I.c.provider_id, I.c.resource_class, n, by_uuid))
    )


_PAIR_STATE = _Precompiled(pair_state_statement)


def pair_states(
    session: Session, pairs: Iterable[Pair], start_s: int, end_s: int, now_s: int
) -> dict[Pair, PairState]:
    """Inventory, VLAN ranges and peak live usage over [start_s, end_s) of each (provider, class) in
    ``pairs``, in one round trip. A pair without inventory is missing from the answer.

    Call it after ``lock_providers``: on PostgreSQL the statement's snapshot is then taken after the
    lock was granted, so it sees every earlier claim's rows and every committed inventory change.
    """
    wanted = sorted(set(pairs))
    if not wanted:
        return {}
    params = {**_pair_params(wanted), "s": start_s, "e": end_s, "now": now_s}
    return states_of(_PAIR_STATE.execute(session.connection(), len(wanted), params))


def states_of(rows: Iterable[Sequence[Any]]) -> dict[Pair, PairState]:
    """``pair_state_statement``'s rows, by (provider id, class); typed by the driver or as text."""
    return {
        (int(pid), str(rc)): PairState(
            InventoryFacts(int(total), int(res), int(lo), int(hi), int(step), float(ratio)),
            None if vlans is None else str(vlans),
            Usage(max(int(peak or 0), 0), bool(int(dead or 0))),
        )
        for pid, rc, total, res, lo, hi, step, ratio, vlans, peak, dead in rows
    }


# -- VLAN tags ----------------------------------------------------------------------------------------------

_VLAN_HOLDERS = (
    select(A.c.provider_id, A.c.vlan_tag)
    .select_from(A.join(C, C.c.id == A.c.consumer_id))
    .where(
        tuple_(A.c.provider_id, A.c.vlan_tag).in_(bindparam("tags", expanding=True)),
        A.c.start_s < bindparam("e"),
        A.c.end_s > bindparam("s"),
        _is_live(bindparam("now")),
    )
    .distinct()
)


def vlan_holders(
    session: Session, tags: Iterable[tuple[int, int]], start_s: int, end_s: int, now_s: int
) -> set[tuple[int, int]]:
    """Which of the (port provider id, tag) pairs a live allocation holds at some time in [start_s, end_s)."""
    wanted = sorted(set(tags))
    if not wanted:
        return set()
    rows = session.connection().execute(
        _VLAN_HOLDERS, {"tags": wanted, "s": start_s, "e": end_s, "now": now_s}
    )
    return {(int(p), int(t)) for p, t in rows}


# -- expired holds ------------------------------------------------------------------------------------------


def _expire(session: Session, where: ColumnElement[bool], now_s: int) -> list[int]:
    """Mark the matching unexpired-looking holds EXPIRED and delete their allocations; their ids.

    The guarded UPDATE is the exactly-once point: a concurrent reaper, release or accept (which must
    itself be an UPDATE guarded on ``kind = 'hold' AND status = 'HELD' AND expires_s > now``) waits for
    the consumer row's lock and then finds the guard false.
    """
    conn = session.connection()
    stmt = (
        update(C)
        .where(_is_expired_hold(bindparam("now")), where)
        .values(status=ConsumerStatus.EXPIRED.value, generation=C.c.generation + 1)
        .returning(C.c.id)
    )
    ids = sorted(int(i) for i in conn.scalars(stmt, {"now": now_s}))
    if ids:
        conn.execute(delete(A).where(A.c.consumer_id.in_(ids)))
    return ids


def reap_expired_holds(
    session: Session, pairs: Iterable[Pair], start_s: int, end_s: int, now_s: int
) -> list[int]:
    """Expire the holds that have allocations on ``pairs`` overlapping [start_s, end_s)."""
    overlapping = select(A.c.consumer_id).where(
        tuple_(A.c.provider_id, A.c.resource_class).in_(sorted(set(pairs))),
        A.c.start_s < end_s,
        A.c.end_s > start_s,
    )
    return _expire(session, C.c.id.in_(overlapping), now_s)


def expire_all_holds(session: Session, now_s: int, limit: int = 1000) -> list[int]:
    """Expire up to ``limit`` holds whose expiry has passed, anywhere (the periodic sweeper's step)."""
    due = (
        select(C.c.id).where(_is_expired_hold(bindparam("now"))).order_by(C.c.expires_s, C.c.id).limit(limit)
    )
    return _expire(session, C.c.id.in_(due), now_s)


# -- writes -------------------------------------------------------------------------------------------------

CAL = cast(Table, CalendarStateRow.__table__)
# The very statement of ``CalendarRepository.bump``, executed on the connection: the ORM's bulk-UPDATE
# path costs ~0.3 ms of CPU per call, about a tenth of a claim.
_BUMP_CALENDAR = _Precompiled(
    lambda _n: update(CAL).where(CAL.c.id == bindparam("shard")).values(generation=CAL.c.generation + 1)
)


def bump_calendar(session: Session, shard_key: int = 0) -> None:
    """Bump the calendar generation (one of its shards, see ``CALENDAR_SHARDS``). Run it last before
    COMMIT: its row lock is held until then. Claims pass their lowest provider id, so claims on
    different providers bump different rows and stop queueing behind one another's commits."""
    _BUMP_CALENDAR.execute(session.connection(), 0, {"shard": calendar_shard(shard_key)})


_INSERT_CONSUMER = insert(C).returning(C.c.id)
INSERT_BATCH = 500
_ALLOCATION_COLUMNS = (
    "consumer_id",
    "provider_id",
    "resource_class",
    "amount",
    "start_s",
    "end_s",
    "vlan_tag",
)
# All rows in one multi-VALUES INSERT: one round trip, no driver-level executemany.
_INSERT_ALLOCATIONS = _Precompiled(
    lambda n: insert(A).values(
        [
            {c: (_str if c == "resource_class" else _int)(f"{c}{i}") for c in _ALLOCATION_COLUMNS}
            for i in range(n)
        ]
    )
)


def insert_consumer(session: Session, values: dict[str, Any]) -> int:
    return int(session.connection().execute(_INSERT_CONSUMER, values).scalar_one())


def insert_allocations(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn = session.connection()
        for at in range(0, len(rows), INSERT_BATCH):  # stay far below SQLite's 32766 bind parameters
            batch = rows[at : at + INSERT_BATCH]
            params = {f"{c}{i}": row[c] for i, row in enumerate(batch) for c in _ALLOCATION_COLUMNS}
            _INSERT_ALLOCATIONS.execute(conn, len(batch), params)


def pg_write_claim_sql(n: int) -> str:
    """One PostgreSQL statement that inserts the consumer, its n allocation rows and bumps a calendar
    shard: data-modifying CTEs, so a claim's writes cost one round trip instead of three. Every
    parameter is cast, so a NULL (no VLAN tag, no expiry) has a type whatever row it is in."""
    rows = ", ".join(
        f"(%(p{i})s::bigint, %(rc{i})s::varchar, %(a{i})s::bigint, %(vlan{i})s::integer)" for i in range(n)
    )
    return (
        "WITH c AS (INSERT INTO consumers "
        "(uuid, kind, name, project, status, start_s, end_s, expires_s, generation, created_at) "
        "VALUES (%(uuid)s::varchar, %(kind)s::varchar, %(name)s::varchar, %(project)s::varchar, "
        "%(status)s::varchar, %(s)s::bigint, %(e)s::bigint, %(expires)s::bigint, 0, "
        "%(created)s::timestamptz) RETURNING id), "
        "a AS (INSERT INTO allocations "
        "(consumer_id, provider_id, resource_class, amount, start_s, end_s, vlan_tag) "
        "SELECT c.id, v.p, v.rc, v.a, %(s)s::bigint, %(e)s::bigint, v.vlan "
        f"FROM c CROSS JOIN (VALUES {rows}) AS v (p, rc, a, vlan)), "
        "g AS (UPDATE calendar_state SET generation = generation + 1 WHERE id = %(shard)s::integer) "
        "SELECT id FROM c"
    )


_PG_WRITE_CLAIM: dict[int, str] = {}


def write_claim(
    session: Session,
    consumer: dict[str, Any],
    items: Sequence[tuple[int, str, int, int | None]],
    shard_key: int,
) -> int:
    """Insert the consumer (``insert_consumer``'s values), one allocation per item (provider id, class,
    amount, VLAN tag) over the consumer's [start_s, end_s), and bump the calendar shard of
    ``shard_key``; the new consumer's id. PostgreSQL: one statement (``pg_write_claim_sql``); SQLite (no
    data-modifying CTEs, and no network round trips to save): the three statements. Run it last."""
    conn = session.connection()
    if conn.dialect.name != "postgresql" or not items or len(items) > INSERT_BATCH:
        cid = insert_consumer(session, consumer)
        s, e = consumer["start_s"], consumer["end_s"]
        insert_allocations(
            session,
            [
                {
                    "consumer_id": cid,
                    "provider_id": p,
                    "resource_class": rc,
                    "amount": a,
                    "start_s": s,
                    "end_s": e,
                    "vlan_tag": v,
                }
                for p, rc, a, v in items
            ],
        )
        bump_calendar(session, shard_key)
        return cid
    n = len(items)
    sql = _PG_WRITE_CLAIM.get(n) or _PG_WRITE_CLAIM.setdefault(n, pg_write_claim_sql(n))  # n <= MAX_ITEMS
    ((consumer_id,),) = run_raw(conn, sql, write_params(consumer, items, shard_key))
    return int(consumer_id)


def write_params(
    consumer: dict[str, Any], items: Sequence[tuple[int, str, int, int | None]], shard_key: int
) -> dict[str, Any]:
    """The parameters of ``pg_write_claim_sql(len(items))``."""
    params: dict[str, Any] = {
        "uuid": consumer["uuid"],
        "kind": consumer["kind"],
        "name": consumer.get("name", ""),
        "project": consumer["project"],
        "status": consumer["status"],
        "s": consumer["start_s"],
        "e": consumer["end_s"],
        "expires": consumer.get("expires_s"),
        "created": utcnow(),
        "shard": calendar_shard(shard_key),
    }
    for i, (p, rc, a, v) in enumerate(items):
        params[f"p{i}"], params[f"rc{i}"], params[f"a{i}"], params[f"vlan{i}"] = p, rc, a, v
    return params


@dataclass(frozen=True)
class Released:
    consumer_id: int | None  # None: no such consumer
    status: str
    changed: bool
    deleted: int = 0
    ended: int = 0


_FIND_CONSUMER = select(C.c.id, C.c.status).where(C.c.uuid == bindparam("uuid"))
# A hold never runs, so there is nothing to "end": a hold released as ENDED is simply RELEASED.
_NEW_STATUS = case(
    (
        and_(C.c.kind == ConsumerKind.HOLD.value, bindparam("new_status") == ConsumerStatus.ENDED.value),
        ConsumerStatus.RELEASED.value,
    ),
    else_=bindparam("new_status"),
)
_MARK_RELEASED = (
    update(C)
    .where(C.c.uuid == bindparam("b_uuid"), C.c.status.not_in(_RELEASED))
    .values(status=_NEW_STATUS, generation=C.c.generation + 1)
    .returning(C.c.id, C.c.status)
)
_DELETE_ALL = delete(A).where(A.c.consumer_id == bindparam("cid"))
_DELETE_FUTURE = delete(A).where(A.c.consumer_id == bindparam("cid"), A.c.start_s >= bindparam("now"))
_CUT_RUNNING = (
    update(A)
    .where(A.c.consumer_id == bindparam("cid"), A.c.start_s < bindparam("now"), A.c.end_s > bindparam("now"))
    .values(end_s=bindparam("now"))
)


def release_consumer(session: Session, uuid: str, status: str, now_s: int) -> Released:
    """Move the consumer to ``status`` (one of ``RELEASE_STATUSES``) and free its allocations, once.

    A freeing status deletes every allocation of the consumer. ``ENDED`` (a lease stopping, early or on
    time) deletes what has not started and cuts what is running at ``now``, so the past stays on record
    and still counts, exactly as the table shows. The guarded UPDATE makes the whole thing happen once:
    a second (or concurrent) release finds the guard false and changes nothing.
    """
    conn = session.connection()
    row = conn.execute(_MARK_RELEASED, {"b_uuid": uuid, "new_status": status}).first()
    if row is None:
        found = conn.execute(_FIND_CONSUMER, {"uuid": uuid}).first()
        if found is None:
            return Released(None, "", changed=False)
        return Released(int(found.id), str(found.status), changed=False)
    cid, status = int(row.id), str(row.status)
    if status in FREEING_STATUSES:
        deleted = conn.execute(_DELETE_ALL, {"cid": cid}).rowcount
        return Released(cid, status, changed=True, deleted=deleted)
    deleted = conn.execute(_DELETE_FUTURE, {"cid": cid, "now": now_s}).rowcount
    ended = conn.execute(_CUT_RUNNING, {"cid": cid, "now": now_s}).rowcount
    return Released(cid, status, changed=True, deleted=deleted, ended=ended)
