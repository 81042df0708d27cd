"""The claim path's statements run inside the caller's transaction (a ``Session`` from a ``UnitOfWork``):
the reference executor, plain SQLAlchemy Core, used on SQLite and by every claim the two-round-trip path
does not serve (VLAN tags, expired holds to reap, quotas, claims composed into a larger unit of work).

Core rather than ORM objects: a claim is a handful of statements and the ORM's per-row bookkeeping
would cost more than the database work. The claim's own hot statements (lock, pair state, consumer and
allocation inserts, calendar bump, PostgreSQL's one-statement write, the release's) go one step
further: ``store/prebuilt.py`` compiles each once per (dialect, padded list length) and runs the SQL
string on the DBAPI cursor (docs/decisions/0016-claims-in-two-round-trips.md,
0048-lease-writes-prebuilt.md); statement events (``before_cursor_execute``) do not fire for these.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from slotbroker.domain.claim_rule import AllocationItem, LockedProvider, Pair, PairState
from slotbroker.domain.claims import FREEING_STATUSES
from slotbroker.engine.snapshot import AllocationSnap
from slotbroker.store import calendar_changes
from slotbroker.store.calendar_changes import Holding
from slotbroker.store.claims import statements as st
from slotbroker.store.models import calendar_shard, utcnow
from slotbroker.store.prebuilt import pad, run_compiled, run_counted, run_many


def lock_providers(session: Session, uuids: Collection[str]) -> dict[str, LockedProvider]:
    """Lock the providers named by ``uuids`` (PostgreSQL: row locks in id order, held to commit).

    Returns the ones that exist, by uuid. Anything read *after* this call sees every claim that held
    these locks before us (READ COMMITTED takes a fresh snapshot per statement).
    """
    if not uuids:
        return {}
    wanted = pad(sorted(set(uuids)))
    return st.locked_of(
        run_compiled(session.connection(), st.lock_statement, len(wanted), st.lock_params(wanted))
    )


def lock_provider_ids(session: Session, ids: Collection[int]) -> list[int]:
    """The same lock by provider id, for other writers (e.g. an inventory shrink) that must serialise
    with claims before they read usage."""
    if not ids:
        return []
    return [int(i) for i in session.connection().scalars(st.LOCK_BY_ID, {"ids": sorted(set(ids))})]


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
    wanted = pad(wanted)
    params = st.pair_params(wanted, start_s, end_s, now_s)
    return st.states_of(run_compiled(session.connection(), st.pair_state_statement, len(wanted), params))


def vlan_holders(
    session: Session, tags: Iterable[tuple[int, int]], start_s: int, end_s: int, now_s: int
) -> set[tuple[int, int]]:
    """Which of the (port provider id, tag) pairs a live allocation holds at some time in [start_s, end_s)."""
    wanted = sorted(set(tags))
    if not wanted:
        return set()
    rows = session.connection().execute(
        st.VLAN_HOLDERS, {"tags": wanted, "s": start_s, "e": end_s, "now": now_s}
    )
    return {(int(p), int(t)) for p, t in rows}


def _expire(session: Session, where: ColumnElement[bool], now_s: int) -> list[int]:
    """Mark the matching holds EXPIRED (``statements.expire_statement``) and delete their allocations."""
    conn = session.connection()
    ids = sorted(int(i) for i in conn.scalars(st.expire_statement(where), {"now": now_s}))
    if ids:
        conn.execute(st.delete_allocations_of(ids))
        # Holds past their expiry are already out of a fresh cache, or in one due to rebuild: no delta.
        calendar_changes.mark_opaque(session)
    return ids


def reap_expired_holds(
    session: Session, pairs: Iterable[Pair], start_s: int, end_s: int, now_s: int
) -> list[int]:
    """Expire the holds that have allocations on ``pairs`` overlapping [start_s, end_s)."""
    return _expire(session, st.holds_on(sorted(set(pairs)), start_s, end_s), now_s)


def expire_all_holds(session: Session, now_s: int, limit: int = 1000) -> list[int]:
    """Expire up to ``limit`` holds whose expiry has passed, anywhere (the periodic sweeper's step)."""
    return _expire(session, st.holds_due(limit), now_s)


def bump_calendar(session: Session, shard_key: int = 0) -> None:
    """Bump the calendar generation (one of its shards, see ``CALENDAR_SHARDS``). Run it last before
    COMMIT: its row lock is held until then. Claims pass their lowest provider id, so claims on
    different providers bump different rows and stop queueing behind one another's commits."""
    run_compiled(session.connection(), st.bump_statement, 0, {"shard": calendar_shard(shard_key)})
    calendar_changes.bumped(session)


def insert_consumer(session: Session, values: dict[str, Any]) -> int:
    """Insert a new consumer (``values``: the consumer row's, ``claim_rule.Write.consumer``); its id."""
    params = st.consumer_params(values, utcnow())
    ((cid,),) = run_compiled(session.connection(), st.insert_consumer_statement, 0, params)
    return int(cid)


def write_claim(
    session: Session, consumer: dict[str, Any], items: Sequence[AllocationItem], shard_key: int
) -> int:
    """Insert the consumer (``insert_consumer``'s values), one allocation per item (provider id, class,
    amount, VLAN tag) over the consumer's [start_s, end_s), and bump the calendar shard of
    ``shard_key``; the new consumer's id. PostgreSQL: one statement (``statements.write_statement``);
    SQLite (no data-modifying CTEs, and no round trips to save): the consumer, its rows by one
    executemany of the one-row INSERT (compiled once, whatever the item count), the bump. Run it last."""
    conn = session.connection()
    if conn.dialect.name == "postgresql" and 0 < len(items) <= st.INSERT_BATCH:
        params = st.write_params(consumer, items, calendar_shard(shard_key), utcnow())
        ((consumer_id,),) = run_compiled(conn, st.write_statement, len(items), params)
        calendar_changes.bumped(session)
        cid = int(consumer_id)
    else:
        cid = insert_consumer(session, consumer)
        s, e = consumer["start_s"], consumer["end_s"]
        rows = [st.allocation_params(cid, s, e, [item]) for item in items]
        run_many(conn, st.insert_allocations_statement, rows)
        bump_calendar(session, shard_key)
    calendar_changes.describe(session, added=[_holding(cid, consumer, items)], bumps=1)
    return cid


def _holding(cid: int, consumer: dict[str, Any], items: Sequence[AllocationItem]) -> Holding:
    """The rows ``write_claim`` wrote, as the calendar sees them (no read needed: they are the items)."""
    s, e, expires = int(consumer["start_s"]), int(consumer["end_s"]), consumer.get("expires_s")
    rows = tuple(AllocationSnap(int(p), str(rc), int(a), s, e, vlan) for p, rc, a, vlan in items)
    return Holding(
        cid, str(consumer["status"]), str(consumer["kind"]), None if expires is None else int(expires), rows
    )


@dataclass(frozen=True)
class Released:
    consumer_id: int | None  # None: no such consumer
    status: str
    changed: bool
    deleted: int = 0
    ended: int = 0


def release_consumer(
    session: Session, uuid: str, status: str, now_s: int, *, consumer_id: int | None = None
) -> Released:
    """Move the consumer to ``status`` (one of ``RELEASE_STATUSES``) and free its allocations, once.

    A freeing status deletes every allocation of the consumer. ``ENDED`` (a lease stopping, early or on
    time) deletes what has not started and cuts what is running at ``now``, so the past stays on record
    and still counts, exactly as the table shows. The guarded UPDATE makes the whole thing happen once:
    a second (or concurrent) release finds the guard false and changes nothing. ``consumer_id``: the
    id of ``uuid`` when the caller has it (its row locked), which saves looking it up.
    """
    conn = session.connection()
    before = _holdings_of(session, uuid, consumer_id)
    marked = run_compiled(conn, st.mark_released_statement, 0, {"b_uuid": uuid, "new_status": status})
    if not marked:
        found = conn.execute(st.FIND_CONSUMER, {"uuid": uuid}).first()
        if found is None:
            return Released(None, "", changed=False)
        return Released(int(found.id), str(found.status), changed=False)
    ((cid, new_status),) = marked
    cid = int(cid)
    if consumer_id is not None and cid != consumer_id:
        raise AssertionError(f"consumer {uuid} is {cid}, not {consumer_id}")
    done = _release_rows(conn, cid, str(new_status), now_s)
    if before is not None:  # the caller bumps the calendar once for a change (``ClaimService.release_in``)
        after = calendar_changes.holdings(session, [cid])
        calendar_changes.describe(session, removed=before, added=after, bumps=1)
    return done


def _holdings_of(session: Session, uuid: str, consumer_id: int | None) -> list[Holding] | None:
    """The consumer ``uuid`` (whose id is ``consumer_id`` when known) as ``calendar_changes.holdings``
    reads it; None when nobody records."""
    if calendar_changes.of(session) is None:
        return None
    if consumer_id is not None:
        return calendar_changes.holdings(session, [consumer_id])
    return _holdings_by_uuid(session, uuid)


def _holdings_by_uuid(session: Session, uuid: str) -> list[Holding] | None:
    """The consumer ``uuid`` as ``calendar_changes.holdings`` reads it; None when nobody records."""
    if calendar_changes.of(session) is None:
        return None
    found = session.connection().execute(st.FIND_CONSUMER, {"uuid": uuid}).first()
    return [] if found is None else calendar_changes.holdings(session, [int(found.id)])


def _release_rows(conn: Connection, cid: int, status: str, now_s: int) -> Released:
    """Free the rows of a consumer just moved to ``status``: all of them, or (``ENDED``) ``stop_rows``."""
    if status in FREEING_STATUSES:
        deleted = run_counted(conn, st.delete_all_statement, {"cid": cid})
        return Released(cid, status, changed=True, deleted=deleted)
    deleted = run_counted(conn, st.delete_future_statement, {"cid": cid, "now": now_s})
    ended = run_counted(conn, st.cut_running_statement, {"cid": cid, "now": now_s})
    return Released(cid, status, changed=True, deleted=deleted, ended=ended)
