"""A lease's scheduled events (start, before_end, end): what the lease event loop reads every tick and
what creating, moving and ending a lease writes. ``LeaseRepository`` inherits these methods, so callers
keep one repository per lease (``uow.leases``); the statements are built once, at import or once per
list of kinds, and the hot ones run compiled once (``store/prebuilt.py``)."""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, Integer, String, bindparam, case, delete, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from slotbroker.store.prebuilt import (
    Build,
    fixed,
    pad,
    run_compiled,
    run_counted,
    run_many,
    run_rows,
    session_connection,
)
from slotbroker.store.tables import lease_events


class DueEvent(NamedTuple):
    id: int
    due_s: int


class LeaseEventRows:
    session: Session

    def _core(self) -> Connection:
        return session_connection(self.session)

    def events_of(self, consumer_ids: Collection[int]) -> list[Any]:
        """(consumer_id, kind, due_s, fired_at) of the leases' events, by due time."""
        ids = pad(sorted(set(consumer_ids)))
        params = {f"k{i}": cid for i, cid in enumerate(ids)}
        return run_rows(self._core(), _events_of, len(ids), params) if ids else []

    def reschedule_events(self, consumer_id: int, due: Mapping[str, int]) -> None:
        """(Re)schedule the lease's events (kind -> due): an unfired one moves to its new time, a
        missing one is added, a fired one stays as it is. Two statements (three when one is missing)."""
        if not due:
            return
        conn = self._core()
        have = {str(k) for (k,) in run_compiled(conn, _event_kinds, 0, {"cid": consumer_id})}
        params: dict[str, Any] = {"cid": consumer_id}
        for i, (kind, due_s) in enumerate(due.items()):
            params[f"k{i}"], params[f"d{i}"] = kind, due_s
        run_counted(conn, _reschedule_unfired, params, len(due))
        missing = [
            {"consumer_id": consumer_id, "kind": k, "due_s": d, "fired_at": None}
            for k, d in due.items()
            if k not in have
        ]
        run_many(conn, _add_event, missing)

    def add_event(self, consumer_id: int, kind: str, due_s: int, fired_at: datetime | None = None) -> None:
        params = {"consumer_id": consumer_id, "kind": kind, "due_s": due_s, "fired_at": fired_at}
        run_counted(self._core(), _add_event, params)

    def add_events(self, consumer_id: int, due: Mapping[str, int]) -> None:
        """A new lease's events (kind -> due), in one statement; the lease must have none yet."""
        rows = [{"consumer_id": consumer_id, "kind": k, "due_s": d, "fired_at": None} for k, d in due.items()]
        run_many(self._core(), _add_event, rows)

    def drop_unfired_events(self, consumer_id: int) -> None:
        run_counted(self._core(), _drop_unfired, {"cid": consumer_id})

    def unfired_event(self, consumer_id: int, kind: str) -> DueEvent | None:
        """(id, due_s) of the lease's unfired ``kind`` event, or None."""
        rows = run_compiled(self._core(), _unfired_event, 0, {"cid": consumer_id, "kind": kind})
        return DueEvent(int(rows[0][0]), int(rows[0][1])) if rows else None

    def events_due(self, now_s: int, kinds: Sequence[str], limit: int) -> list[int]:
        """Leases with unfired events of ``kinds`` due at ``now_s``, earliest first (no locks)."""
        rows = run_compiled(self._core(), _events_due(tuple(kinds)), 0, {"now": now_s, "limit": limit})
        return list(dict.fromkeys(int(cid) for (cid,) in rows))

    def lock_due_events(
        self, consumer_id: int, now_s: int, kinds: Sequence[str]
    ) -> list[tuple[int, str, int]]:
        """(id, kind, due_s) of the lease's unfired events due at ``now_s``, in firing order, locked."""
        rows = run_compiled(self._core(), _lock_due(tuple(kinds)), 0, {"cid": consumer_id, "now": now_s})
        return [(int(i), str(k), int(d)) for i, k, d in rows]

    def mark_fired(self, event_id: int, fired_at: datetime) -> bool:
        """Guarded: False when the event had fired already."""
        return run_counted(self._core(), _mark_fired, {"event_id": event_id, "fired": fired_at}) == 1


@functools.cache
def _events_of(n: int) -> Any:
    """The events of the leases :k0 ... :k(n-1), by due time (``events_of``)."""
    e = lease_events.c
    return (
        select(e.consumer_id, e.kind, e.due_s, e.fired_at)
        .where(e.consumer_id.in_([bindparam(f"k{i}", type_=e.consumer_id.type) for i in range(n)]))
        .order_by(e.due_s, e.id)
    )


_ADD_EVENT = insert(lease_events).values(
    consumer_id=bindparam("consumer_id"),
    kind=bindparam("kind"),
    due_s=bindparam("due_s"),
    fired_at=bindparam("fired_at", type_=lease_events.c.fired_at.type),
)
_UNFIRED = lease_events.c.fired_at.is_(None)
_DROP_UNFIRED = delete(lease_events).where(lease_events.c.consumer_id == bindparam("cid"), _UNFIRED)
_UNFIRED_EVENT = select(lease_events.c.id, lease_events.c.due_s).where(
    lease_events.c.consumer_id == bindparam("cid"), lease_events.c.kind == bindparam("kind"), _UNFIRED
)
_MARK_FIRED = (
    update(lease_events)
    .where(lease_events.c.id == bindparam("event_id"), _UNFIRED)
    .values(fired_at=bindparam("fired", type_=lease_events.c.fired_at.type))
)


_EVENT_KINDS = select(lease_events.c.kind).where(lease_events.c.consumer_id == bindparam("cid"))


# The statements above that run compiled once (``store/prebuilt.py``), as its builders.
_drop_unfired = fixed(_DROP_UNFIRED)
_unfired_event = fixed(_UNFIRED_EVENT)
_event_kinds = fixed(_EVENT_KINDS)
_add_event = fixed(_ADD_EVENT)
_mark_fired = fixed(_MARK_FIRED)


@functools.cache
def _reschedule_unfired(n: int) -> Any:
    """Move the lease's (:cid) unfired events of n kinds (:k0 ...) to their new times (:d0 ...)."""
    e = lease_events.c
    kinds = [bindparam(f"k{i}", type_=String) for i in range(n)]
    return (
        update(lease_events)
        .where(e.consumer_id == bindparam("cid"), _UNFIRED, or_(*(e.kind == k for k in kinds)))
        .values(
            due_s=case(*((e.kind == k, bindparam(f"d{i}", type_=BigInteger)) for i, k in enumerate(kinds)))
        )
    )


@functools.lru_cache(maxsize=8)
def _lock_due(kinds: tuple[str, ...]) -> Build:
    """The builder of ``lock_due_events``' statement, made once per ``kinds`` (the builder is
    ``prebuilt``'s key: the statement is compiled once per dialect)."""
    return fixed(
        select(lease_events.c.id, lease_events.c.kind, lease_events.c.due_s)
        .where(
            lease_events.c.consumer_id == bindparam("cid"),
            _UNFIRED,
            lease_events.c.due_s <= bindparam("now", type_=BigInteger),
            _of_kinds(kinds),
        )
        .order_by(lease_events.c.due_s, _rank(kinds), lease_events.c.id)
        .with_for_update()
    )


@functools.lru_cache(maxsize=8)
def _events_due(kinds: tuple[str, ...]) -> Build:
    """The builder of ``events_due``' statement, made once per ``kinds`` (the event loop asks every
    tick; compiled once per dialect)."""
    return fixed(
        select(lease_events.c.consumer_id)
        .where(
            lease_events.c.fired_at.is_(None),
            lease_events.c.due_s <= bindparam("now", type_=BigInteger),
            _of_kinds(kinds),
        )
        .order_by(lease_events.c.due_s, _rank(kinds), lease_events.c.id)
        .limit(bindparam("limit", type_=Integer))
    )


def _of_kinds(kinds: Sequence[str]) -> Any:
    """``kind`` is one of ``kinds``, as plain bound parameters: ``IN`` with a list is an expanding
    parameter, re-rendered at every execution, and these statements run at every tick."""
    return functools.reduce(lambda a, b: a | b, (lease_events.c.kind == k for k in kinds))


def _rank(kinds: Sequence[str]) -> Any:
    """Events due at the same second fire in the order of ``kinds`` (start before end)."""
    return case(*((lease_events.c.kind == k, r) for r, k in enumerate(kinds)), else_=len(kinds))
