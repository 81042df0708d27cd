"""What a unit of work did to the calendar, so a cache in this process can follow without a reload.

The calendar index of a replica (``services/find_slot/calendar_cache.py``) is built from the allocation
rows of the consumers that hold capacity. Rebuilding it after every booking costs a read of every row; the
writes of this process already know what they changed. So every store function that changes allocation
rows, or whether a consumer holds capacity (status, kind, hold expiry), describes the change here: the
consumers' rows before and after (``Holding``), and how many calendar bumps the change accounts for. Every
bump statement counts itself (``bumped``).

A commit is *complete* when every bump it ran is accounted for by a description and nothing opaque ran
(``opaque``: a write known to change the calendar in a way not described, e.g. reaping holds or inventory).
Only complete commits can be replayed onto a cached index; any other makes the cache rebuild. The count of
bumps is the safety net for paths nobody described: the writers that change capacity bump the generation
(decision 0006), so an undescribed writer leaves an unaccounted bump behind - here, or in the database's
generation, which the cache compares with what it was told (decision 0030).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from slotbroker.engine.snapshot import AllocationSnap
from slotbroker.store import tables
from slotbroker.store.prebuilt import pad, run_compiled, session_connection

_KEY = "slotbroker.calendar_changes"


@dataclass(frozen=True)
class Holding:
    """One consumer as the calendar sees it: whether it holds capacity (``status``, ``kind``,
    ``expires_s``: the ``live_consumer`` rule decides at a given time) and its allocation rows."""

    consumer_id: int
    status: str
    kind: str
    expires_s: int | None
    rows: tuple[AllocationSnap, ...]


@dataclass
class CalendarChanges:
    bumps: int = 0  # calendar bump statements run
    described_bumps: int = 0  # the bumps the descriptions account for
    opaque: bool = False
    removed: list[Holding] = field(default_factory=list)
    added: list[Holding] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.opaque and self.bumps == self.described_bumps

    @property
    def touched(self) -> bool:
        return self.bumps > 0 or self.opaque or bool(self.removed) or bool(self.added)


def start(session: Session) -> CalendarChanges:
    """Record the changes of ``session``'s transaction from now on (the unit of work does this)."""
    changes = session.info[_KEY] = CalendarChanges()
    return changes


def of(session: Session) -> CalendarChanges | None:
    """The record of ``session``, None when nobody records (a nested or read-only unit of work)."""
    found = session.info.get(_KEY)
    return found if isinstance(found, CalendarChanges) else None


def bumped(session: Session, n: int = 1) -> None:
    """Every calendar bump statement calls this as it runs."""
    changes = of(session)
    if changes is not None:
        changes.bumps += n


def mark_opaque(session: Session) -> None:
    """The transaction changed the calendar in a way nobody describes: caches rebuild after it."""
    changes = of(session)
    if changes is not None:
        changes.opaque = True


def describe(
    session: Session, *, removed: Collection[Holding] = (), added: Collection[Holding] = (), bumps: int = 0
) -> None:
    changes = of(session)
    if changes is not None:
        changes.removed.extend(removed)
        changes.added.extend(added)
        changes.described_bumps += bumps


_c, _a = tables.consumers.c, tables.allocations.c


@cache
def _holdings_statement(n: int) -> Any:
    """The consumers :k0 ... :k(n-1) with their allocation rows (a consumer without rows: one row of
    NULLs). Key lists are padded (``prebuilt.pad``): a repeated id changes nothing."""
    return (
        select(
            _c.id, _c.status, _c.kind, _c.expires_s,
            _a.provider_id, _a.resource_class, _a.amount, _a.start_s, _a.end_s, _a.vlan_tag,
        )
        .select_from(tables.consumers.outerjoin(tables.allocations, _a.consumer_id == _c.id))
        .where(_c.id.in_([bindparam(f"k{i}", type_=_c.id.type) for i in range(n)]))
    )  # fmt: skip


def holdings(session: Session, consumer_ids: Collection[int]) -> list[Holding]:
    """The consumers (with their rows) as they stand in this transaction; one query, compiled once per
    padded count and run on the cursor (``store/prebuilt.py``): every release and move reads its
    consumer's holdings twice, and the ORM's execution path cost several times the query."""
    if not consumer_ids:
        return []
    ids = pad(sorted(set(consumer_ids)))
    params = {f"k{i}": cid for i, cid in enumerate(ids)}
    heads: dict[int, tuple[str, str, int | None]] = {}
    rows: dict[int, list[AllocationSnap]] = {}
    found = run_compiled(session_connection(session), _holdings_statement, len(ids), params)
    for cid, status, kind, expires, pid, rc, amount, s, e, vlan in found:
        heads[int(cid)] = (str(status), str(kind), None if expires is None else int(expires))
        got = rows.setdefault(int(cid), [])
        if pid is not None:
            tag = None if vlan is None else int(vlan)
            got.append(AllocationSnap(int(pid), str(rc), int(amount), int(s), int(e), tag))
    return [Holding(cid, *heads[cid], tuple(rows[cid])) for cid in sorted(heads)]


def owners(session: Session, row_ids: Collection[int]) -> list[int]:
    """The consumers of these allocation rows, when someone records (else no query)."""
    if of(session) is None or not row_ids:
        return []
    a = tables.allocations.c
    return [int(c) for c in session.scalars(select(a.consumer_id).where(a.id.in_(list(row_ids))).distinct())]


@contextmanager
def tracking(session: Session, consumer_ids: Collection[int], *, bumps: int = 0) -> Iterator[None]:
    """Describe whatever the block does to these consumers: their holdings before and after (two reads,
    only when someone records). ``bumps``: the calendar bumps this change accounts for (its caller's)."""
    if of(session) is None or not consumer_ids:
        yield
        return
    before = holdings(session, consumer_ids)
    yield
    describe(session, removed=before, added=holdings(session, consumer_ids), bumps=bumps)
