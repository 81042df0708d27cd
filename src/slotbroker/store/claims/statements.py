"""The claim path's SQL, written once: provider locks, the pair-state read (inventories and peak live
usage), the quota probe, VLAN holders, expiring holds, the write and the release.

Every statement is SQLAlchemy Core on the table handles of ``store/tables.py``. Both executors run
these very objects: ``general.py`` on a ``Session`` (SQLite, and PostgreSQL when the two-round-trip path
is off or cannot serve a claim) and ``pg_two_trips.py``, which compiles them for PostgreSQL into
prepared statements. Statements over a list of n keys are built by a function of n with numbered bind
parameters (``:u0``, ``:u1`` ...), not expanding IN lists, because a prepared statement has a fixed
shape; each builder is cached per n (n is at most ``MAX_ITEMS``, a claim's items).

Usage ("live" allocations) means: rows of consumers that are neither in a freeing status
(``FREEING_STATUSES``) nor holds whose ``expires_s <= now``. The same SQL runs on SQLite and PostgreSQL;
``FOR UPDATE`` is rendered only on PostgreSQL (SQLite's ``BEGIN IMMEDIATE`` already serialises writers).

One module on purpose: it is the claim path's one SQL source, which both executors compile; a reader
checking what a claim locks, reads and writes finds all of it here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    String,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.sql.elements import BindParameter

from slotbroker.domain.claim_rule import InventoryFacts, LockedProvider, Pair, PairState, Usage
from slotbroker.domain.claims import FREEING_STATUSES, RELEASE_STATUSES, ConsumerKind, ConsumerStatus
from slotbroker.store.prebuilt import fixed
from slotbroker.store.repositories.calendar import BUMP_CALENDAR
from slotbroker.store.repositories.usage import live_consumer, stop_rows
from slotbroker.store.tables import (
    allocations,
    consumers,
    facility_ports,
    inventories,
    project_quotas,
    providers,
)

_FREEING = sorted(str(s) for s in FREEING_STATUSES)
_RELEASED = sorted(str(s) for s in RELEASE_STATUSES)
ALLOCATION_COLUMNS = (
    "consumer_id",
    "provider_id",
    "resource_class",
    "amount",
    "start_s",
    "end_s",
    "vlan_tag",
)


def _int(name: str) -> BindParameter[int]:
    return bindparam(name, 0, type_=BigInteger)


def _str(name: str) -> BindParameter[str]:
    return bindparam(name, "", type_=String)


def _is_expired_hold(now: Any) -> ColumnElement[bool]:
    c = consumers.c
    return and_(
        c.kind == ConsumerKind.HOLD.value,
        c.expires_s.is_not(None),
        c.expires_s <= now,
        c.status.not_in(_FREEING),
    )


_is_live = live_consumer  # the one definition of live usage (store/repositories/usage.py)


# -- locking -------------------------------------------------------------------------------------------------


# Ordered by id so that two claims touching the same providers lock them in the same order: no deadlock.
# PostgreSQL's LockRows node sits above the Sort, so rows are locked in exactly this order.
@cache
def lock_statement(n: int) -> Any:
    """Lock n providers by uuid (:u0 ...), in id order; their id, uuid, name and kind."""
    p = providers.c
    return (
        select(p.id, p.uuid, p.name, p.kind)
        .where(or_(*(p.uuid == _str(f"u{i}") for i in range(n))))
        .order_by(p.id)
        .with_for_update()
    )


def lock_params(uuids: Sequence[str]) -> dict[str, Any]:
    return {f"u{i}": u for i, u in enumerate(uuids)}


def locked_of(rows: Iterable[Sequence[Any]]) -> dict[str, LockedProvider]:
    """``lock_statement``'s rows, by uuid; typed by the driver or as text."""
    return {str(u): LockedProvider(int(i), str(u), str(name), str(kind)) for i, u, name, kind in rows}


LOCK_BY_ID = (
    select(providers.c.id)
    .where(providers.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(providers.c.id)
    .with_for_update()
)


@cache
def quota_probe_statement(n: int) -> Any:
    """Whether project :project has a quota on any of n classes (:q0 ...): at most one row. The claim's
    two-round-trip path asks this in its first round trip and leaves quota'd claims to the general
    path, which locks the quota rows (``QuotaService.check_in``)."""
    q = project_quotas.c
    return (
        select(q.resource_class)
        .where(q.project == _str("project"), or_(*(q.resource_class == _str(f"q{i}") for i in range(n))))
        .limit(1)
    )


def quota_probe_params(project: str, classes: Sequence[str]) -> dict[str, Any]:
    params: dict[str, Any] = {"project": project}
    params.update((f"q{i}", rc) for i, rc in enumerate(classes))
    return params


# -- peak overlapping usage ---------------------------------------------------------------------------------


def _pairs_match(provider_id: Any, resource_class: Any, n: int, by_uuid: bool = False) -> ColumnElement[bool]:
    """(provider_id, resource_class) is one of the n pairs :p0/:c0 ... (portable: no row-value IN).
    ``by_uuid``: :p0 ... are provider uuids, looked up in the statement (when the ids are not known yet:
    the two-round-trip path sends this read in the same round trip as the lock)."""

    def provider(i: int) -> Any:
        if by_uuid:
            return select(providers.c.id).where(providers.c.uuid == _str(f"p{i}")).scalar_subquery()
        return _int(f"p{i}")

    return or_(*(and_(provider_id == provider(i), resource_class == _str(f"c{i}")) for i in range(n)))


def pair_params(pairs: Sequence[tuple[Any, str]], start_s: int, end_s: int, now_s: int) -> dict[str, Any]:
    """The parameters of ``pair_state_statement(len(pairs))``: pairs by provider id or by uuid."""
    out: dict[str, Any] = {"s": start_s, "e": end_s, "now": now_s}
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
    a, c = allocations, consumers
    s, e, now = _int("s"), _int("e"), _int("now")
    ov = (
        select(
            a.c.provider_id,
            a.c.resource_class,
            case((_is_live(now), a.c.amount), else_=0).label("amount"),
            a.c.start_s,
            a.c.end_s,
            case((_is_expired_hold(now), 1), else_=0).label("dead"),
        )
        .select_from(a.join(c, c.c.id == a.c.consumer_id))
        .where(_pairs_match(a.c.provider_id, a.c.resource_class, n, by_uuid), a.c.start_s < e, a.c.end_s > s)
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


@cache
def pair_state_statement(n: int, by_uuid: bool = False) -> Any:
    """Inventory, the port's VLAN ranges and peak live usage over [:s, :e) of n (provider, class) pairs
    (by provider id, or by uuid: see ``_pairs_match``); a pair without inventory has no row."""
    i, fp = inventories, facility_ports
    pk = _peak_statement(n, by_uuid).subquery("pk")
    return (
        select(
            i.c.provider_id,
            i.c.resource_class,
            i.c.total,
            i.c.reserved,
            i.c.min_unit,
            i.c.max_unit,
            i.c.step_size,
            i.c.allocation_ratio,
            fp.c.vlans,
            pk.c.peak,
            pk.c.dead,
        )
        .select_from(
            i.outerjoin(fp, fp.c.provider_id == i.c.provider_id).outerjoin(
                pk, and_(pk.c.provider_id == i.c.provider_id, pk.c.resource_class == i.c.resource_class)
            )
        )
        .where(_pairs_match(i.c.provider_id, i.c.resource_class, n, by_uuid))
    )


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

VLAN_HOLDERS = (
    select(allocations.c.provider_id, allocations.c.vlan_tag)
    .select_from(allocations.join(consumers, consumers.c.id == allocations.c.consumer_id))
    .where(
        tuple_(allocations.c.provider_id, allocations.c.vlan_tag).in_(bindparam("tags", expanding=True)),
        allocations.c.start_s < bindparam("e"),
        allocations.c.end_s > bindparam("s"),
        _is_live(bindparam("now")),
    )
    .distinct()
)


# -- expired holds ------------------------------------------------------------------------------------------


def expire_statement(where: ColumnElement[bool]) -> Any:
    """Mark the matching holds whose expiry has passed (:now) EXPIRED; their ids. The guarded UPDATE
    is the exactly-once point: a concurrent reaper, release or accept (which must itself be an UPDATE
    guarded on ``kind = 'hold' AND status = 'HELD' AND expires_s > now``) waits for the consumer row's
    lock and then finds the guard false."""
    c = consumers.c
    return (
        update(consumers)
        .where(_is_expired_hold(bindparam("now")), where)
        .values(status=ConsumerStatus.EXPIRED.value, generation=c.generation + 1)
        .returning(c.id)
    )


def holds_on(pairs: Sequence[Pair], start_s: int, end_s: int) -> ColumnElement[bool]:
    """The consumers with allocations on ``pairs`` overlapping [start_s, end_s)."""
    a = allocations.c
    overlapping = select(a.consumer_id).where(
        tuple_(a.provider_id, a.resource_class).in_(sorted(set(pairs))), a.start_s < end_s, a.end_s > start_s
    )
    return consumers.c.id.in_(overlapping)


def holds_due(limit: int) -> ColumnElement[bool]:
    """Up to ``limit`` holds whose expiry has passed, anywhere, oldest expiry first."""
    c = consumers.c
    due = select(c.id).where(_is_expired_hold(bindparam("now"))).order_by(c.expires_s, c.id).limit(limit)
    return c.id.in_(due)


def delete_allocations_of(ids: Sequence[int]) -> Any:
    return delete(allocations).where(allocations.c.consumer_id.in_(ids))


# -- writes -------------------------------------------------------------------------------------------------

INSERT_BATCH = 500  # rows per multi-VALUES INSERT: far below SQLite's 32766 bind parameters


def insert_allocations_statement(n: int) -> Any:
    """n allocation rows in one multi-VALUES INSERT (:consumer_id0, :provider_id0 ...): one round trip,
    no driver-level executemany. SQLAlchemy does not cache multi-VALUES statements: run it compiled once
    (``prebuilt.run_compiled``)."""
    return insert(allocations).values(
        [
            {c: (_str if c == "resource_class" else _int)(f"{c}{i}") for c in ALLOCATION_COLUMNS}
            for i in range(n)
        ]
    )


def allocation_params(consumer_id: int, start_s: int, end_s: int, items: Sequence[Any]) -> dict[str, Any]:
    """The parameters of ``insert_allocations_statement(len(items))``: items as (provider id, class,
    amount, VLAN tag) over [start_s, end_s)."""
    params: dict[str, Any] = {}
    for i, (p, rc, amount, vlan) in enumerate(items):
        params.update(
            {
                f"consumer_id{i}": consumer_id,
                f"provider_id{i}": p,
                f"resource_class{i}": rc,
                f"amount{i}": amount,
                f"start_s{i}": start_s,
                f"end_s{i}": end_s,
                f"vlan_tag{i}": vlan,
            }
        )
    return params


def bump_statement(_n: int = 0) -> Any:
    """``BUMP_CALENDAR`` (store/repositories/calendar.py), as a builder like the others."""
    return BUMP_CALENDAR


def _consumer_insert() -> Any:
    """Insert the consumer (:uuid, :kind, :name, :project, :status, :s, :e, :expires, :created); its id."""
    c = consumers
    return (
        insert(c)
        .values(
            uuid=_str("uuid"),
            kind=_str("kind"),
            name=_str("name"),
            project=_str("project"),
            status=_str("status"),
            start_s=_int("s"),
            end_s=_int("e"),
            expires_s=_int("expires"),
            generation=0,
            created_at=bindparam("created", None, type_=c.c.created_at.type),
        )
        .returning(c.c.id)
    )


@cache
def insert_consumer_statement(_n: int = 0) -> Any:
    """``write_statement``'s consumer INSERT on its own (the general path's first write, where the
    database has no data-modifying CTEs): parameters by ``consumer_params``."""
    return _consumer_insert()


@cache
def write_statement(n: int) -> Any:
    """The whole write of a claim as one statement, for PostgreSQL (data-modifying CTEs; SQLite has
    none): insert the consumer (:uuid, :kind, :name, :project, :status, :s, :e, :expires, :created), its
    n allocation rows (:p0, :rc0, :a0, :vlan0 ...) over [:s, :e), and bump calendar shard :shard; the new
    consumer's id. The same tables and the same bump as the general path's three statements."""
    a = allocations
    consumer = _consumer_insert().cte("c")
    rows = union_all(
        *(
            select(
                _int(f"p{i}").label("p"),
                _str(f"rc{i}").label("rc"),
                _int(f"a{i}").label("a"),
                bindparam(f"vlan{i}", None, type_=Integer).label("vlan"),
            )
            for i in range(n)
        )
    ).subquery("v")
    inserted = insert(a).from_select(
        list(ALLOCATION_COLUMNS),
        select(consumer.c.id, rows.c.p, rows.c.rc, rows.c.a, _int("s"), _int("e"), rows.c.vlan).select_from(
            consumer.join(rows, true())
        ),
    )
    return select(consumer.c.id).add_cte(inserted.cte("a"), BUMP_CALENDAR.cte("g"))


def write_params(consumer: dict[str, Any], items: Sequence[Any], shard: int, created: Any) -> dict[str, Any]:
    """The parameters of ``write_statement(len(items))``: ``consumer`` as ``consumer_params`` takes it,
    items as (provider id, class, amount, VLAN tag), the calendar shard's id."""
    params = consumer_params(consumer, created)
    params["shard"] = shard
    for i, (p, rc, amount, vlan) in enumerate(items):
        params[f"p{i}"], params[f"rc{i}"], params[f"a{i}"], params[f"vlan{i}"] = p, rc, amount, vlan
    return params


def consumer_params(consumer: dict[str, Any], created: Any) -> dict[str, Any]:
    """The consumer's parameters of ``insert_consumer_statement`` and ``write_statement``, from the
    consumer row's values (``claim_rule.Write.consumer``); a new consumer is at generation 0."""
    if consumer.get("generation", 0) != 0:
        raise ValueError("a new consumer starts at generation 0")
    return {
        "uuid": consumer["uuid"],
        "kind": consumer["kind"],
        "name": consumer.get("name", ""),
        "project": consumer["project"],
        "status": consumer["status"],
        "s": consumer["start_s"],
        "e": consumer["end_s"],
        "expires": consumer.get("expires_s"),
        "created": created,
    }


# -- releases -----------------------------------------------------------------------------------------------

FIND_CONSUMER = select(consumers.c.id, consumers.c.status).where(consumers.c.uuid == bindparam("uuid"))
# A hold never runs, so there is nothing to "end": a hold released as ENDED is simply RELEASED.
_NEW_STATUS = case(
    (
        and_(
            consumers.c.kind == ConsumerKind.HOLD.value, bindparam("new_status") == ConsumerStatus.ENDED.value
        ),
        ConsumerStatus.RELEASED.value,
    ),
    else_=bindparam("new_status"),
)
MARK_RELEASED = (
    update(consumers)
    .where(consumers.c.uuid == bindparam("b_uuid"), consumers.c.status.not_in(_RELEASED))
    .values(status=_NEW_STATUS, generation=consumers.c.generation + 1)
    .returning(consumers.c.id, consumers.c.status)
)
DELETE_ALL = delete(allocations).where(allocations.c.consumer_id == bindparam("cid"))
DELETE_FUTURE, CUT_RUNNING = stop_rows(allocations.c.consumer_id == bindparam("cid"), bindparam("now"))


# The release's statements as builders (``prebuilt.run_compiled``: compiled once, run on the cursor).
mark_released_statement = fixed(MARK_RELEASED)
delete_all_statement = fixed(DELETE_ALL)
delete_future_statement = fixed(DELETE_FUTURE)
cut_running_statement = fixed(CUT_RUNNING)
