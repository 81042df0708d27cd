"""The rows the find-slot calendar index is built from, read in a handful of bulk Core selects.

Only allocations that can still matter are read: those ending after ``since_s`` whose consumer still
holds capacity (not released, and not a hold that has already expired).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, func, not_, or_, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from slotbroker.domain.claims import FREEING_STATUSES
from slotbroker.store import tables
from slotbroker.store.db import READONLY

_GENERATION = text("SELECT COALESCE(SUM(generation), 0) FROM calendar_state")


def committed_generation(engine: Engine) -> int:
    """The committed calendar generation: one primary-key read on a plain connection, no ORM session
    (the cache asks before every answer), so it is made as cheap as each database allows.

    SQLite: read-only, so it opens a deferred ``BEGIN``; a plain connection's ``BEGIN IMMEDIATE`` would
    take the writer lock, and concurrent searches would queue on it and on each other (sleeping in
    SQLite's busy back-off) for a read that needs no lock. PostgreSQL: autocommit, one round trip where
    a transaction costs three (``BEGIN``, the ``SELECT``, ``ROLLBACK``); a lone statement sees committed
    rows either way. (Not on SQLite: resetting pysqlite's isolation level on check-in would undo the
    explicit-``BEGIN`` recipe of store/db.py.)"""
    options: dict[str, Any] = {READONLY: True}
    if engine.dialect.name == "postgresql":
        options["isolation_level"] = "AUTOCOMMIT"
    with engine.connect().execution_options(**options) as conn:
        return int(conn.execute(_GENERATION).scalar() or 0)


def holding_consumers(now_s: int) -> ColumnElement[bool]:
    """SQL condition: consumers whose allocations still count as usage at ``now_s`` - the same rule
    the claims apply (``FREEING_STATUSES``), so find-slot never offers what a claim would refuse."""
    consumers = tables.consumers.c
    return and_(
        not_(consumers.status.in_(sorted(FREEING_STATUSES))),
        or_(consumers.kind != "hold", consumers.expires_s.is_(None), consumers.expires_s > now_s),
    )


class SnapshotRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def providers(self) -> Sequence[Any]:
        """(id, name, kind, parent_id, lat, lon) of every provider."""
        p = tables.providers.c
        return self.session.execute(select(p.id, p.name, p.kind, p.parent_id, p.lat, p.lon)).all()

    def traits(self) -> Sequence[Any]:
        """(provider_id, trait) pairs."""
        t = tables.provider_traits.c
        return self.session.execute(select(t.provider_id, t.trait)).all()

    def aggregates(self) -> Sequence[Any]:
        """(provider_id, aggregate) pairs."""
        a = tables.provider_aggregates.c
        return self.session.execute(select(a.provider_id, a.aggregate)).all()

    def inventories(self) -> Sequence[Any]:
        i = tables.inventories.c
        return self.session.execute(
            select(
                i.provider_id, i.resource_class, i.total, i.reserved, i.allocation_ratio,
                i.min_unit, i.max_unit, i.step_size,
            )
        ).all()  # fmt: skip

    def links(self) -> Sequence[Any]:
        link = tables.links.c
        return self.session.execute(
            select(link.provider_id, link.site_a_id, link.site_b_id, link.latency_ms)
        ).all()

    def ports(self) -> Sequence[Any]:
        port = tables.facility_ports.c
        return self.session.execute(select(port.provider_id, port.site_id, port.port_name, port.vlans)).all()

    def live_allocations(self, *, now_s: int, since_s: int) -> Sequence[Any]:
        """(provider_id, resource_class, amount, start_s, end_s, vlan_tag) of the allocations ending after
        ``since_s`` whose consumer still holds capacity at ``now_s``."""
        a = tables.allocations.c
        q = (
            select(a.provider_id, a.resource_class, a.amount, a.start_s, a.end_s, a.vlan_tag)
            .join(tables.consumers, tables.consumers.c.id == a.consumer_id)
            .where(a.end_s > since_s, holding_consumers(now_s))
        )
        return self.session.execute(q).all()

    def next_hold_expiry(self, now_s: int) -> int | None:
        """The first expiry after ``now_s`` of a hold that still holds capacity: usage drops then."""
        c = tables.consumers.c
        got = self.session.scalar(
            select(func.min(c.expires_s)).where(
                c.kind == "hold", c.expires_s > now_s, holding_consumers(now_s)
            )
        )
        return int(got) if got is not None else None
