"""Allocations as usage: what counts as live, peaks, counts and the overbooking audits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Delete, Update, and_, case, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from slotbroker.domain.claims import FREEING_STATUSES, ConsumerKind
from slotbroker.domain.inventory import capacity_of
from slotbroker.store import calendar_changes, tables
from slotbroker.store.models import (
    AllocationRow,
    ConsumerRow,
    InventoryRow,
)

_FREEING = sorted(str(s) for s in FREEING_STATUSES)


def live_consumer(now: Any) -> ColumnElement[bool]:
    """The one definition of live usage: a consumer's rows count at ``now`` (an int or a bound
    parameter) unless it is being freed or is a hold past its expiry (the reaper may not have run yet,
    and an expired hold must not refuse anyone)."""
    consumers = tables.consumers
    return and_(
        consumers.c.status.not_in(_FREEING),
        or_(
            consumers.c.kind != ConsumerKind.HOLD.value,
            consumers.c.expires_s.is_(None),
            consumers.c.expires_s > now,
        ),
    )


def holds_capacity(status: str, kind: str, expires_s: int | None, now: int) -> bool:
    """``live_consumer`` for a consumer already in hand (the calendar cache replays this process's own
    writes with it); ``test_calendar_changes`` holds the two equal."""
    if status in _FREEING:
        return False
    return kind != ConsumerKind.HOLD.value or expires_s is None or expires_s > now


def stop_rows(match: ColumnElement[bool], now: Any) -> tuple[Delete, Update]:
    """The one definition of stopping allocation rows at ``now`` (an int or a bound parameter): rows
    not yet started are deleted, running ones end at ``now``, rows already over stay as they are, so the
    past stays on record and still counts. Used when a lease ends and when rows move off a host."""
    rows = tables.allocations
    return (
        delete(rows).where(match, rows.c.start_s >= now),
        update(rows).where(match, rows.c.start_s < now, rows.c.end_s > now).values(end_s=now),
    )


class AllocationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def in_use(self, provider_id: int, resource_class: str | None = None) -> bool:
        q = select(func.count()).select_from(AllocationRow).where(AllocationRow.provider_id == provider_id)
        if resource_class is not None:
            q = q.where(AllocationRow.resource_class == resource_class)
        return bool(self.session.scalar(q))

    def peak_usage(self, provider_id: int, resource_class: str, since_s: int) -> int:
        """Peak concurrent live usage (``live_consumer`` at ``since_s``) of one (provider, class) from
        ``since_s`` on.

        A step function's peak on [since, inf) is reached at ``max(start, since)`` of some allocation, so
        it is enough to sum, at each such point, the amounts of the live allocations covering it.
        """
        a = tables.allocations.alias("a")
        b = tables.allocations.alias("b")
        consumers = tables.consumers
        point = case((a.c.start_s > since_s, a.c.start_s), else_=since_s)
        covering = (
            (b.c.provider_id == a.c.provider_id)
            & (b.c.resource_class == a.c.resource_class)
            & (b.c.start_s <= point)
            & (b.c.end_s > point)
        )
        per_point = (
            select(func.sum(b.c.amount).label("usage"))
            .select_from(a.join(b, covering).join(consumers, consumers.c.id == b.c.consumer_id))
            .where(
                a.c.provider_id == provider_id,
                a.c.resource_class == resource_class,
                a.c.end_s > since_s,
                live_consumer(since_s),
            )
            .group_by(a.c.id)
            .subquery()
        )
        return int(self.session.scalar(select(func.coalesce(func.max(per_point.c.usage), 0))) or 0)

    def count(self) -> int:
        return int(self.session.scalar(select(func.count()).select_from(AllocationRow)) or 0)

    def overbooked(self) -> list[tuple[int, str, int, int]]:
        """Audit: every (provider, class) whose peak concurrent usage exceeds its capacity, ever.

        Returns (provider_id, class, peak, capacity) rows; an empty list is the invariant. Peaks are
        evaluated at allocation starts, where a step function's maximum is always reached.
        """
        a = AllocationRow.__table__.alias("a")
        b = AllocationRow.__table__.alias("b")
        covering = (
            (b.c.provider_id == a.c.provider_id)
            & (b.c.resource_class == a.c.resource_class)
            & (b.c.start_s <= a.c.start_s)
            & (b.c.end_s > a.c.start_s)
        )
        per_start = (
            select(a.c.provider_id, a.c.resource_class, func.sum(b.c.amount).label("usage"))
            .select_from(a.join(b, covering))
            .group_by(a.c.id, a.c.provider_id, a.c.resource_class)
            .subquery()
        )
        peaks = (
            select(
                per_start.c.provider_id, per_start.c.resource_class, func.max(per_start.c.usage).label("peak")
            )
            .group_by(per_start.c.provider_id, per_start.c.resource_class)
            .subquery()
        )
        inv = InventoryRow.__table__
        rows = self.session.execute(
            select(
                peaks.c.provider_id,
                peaks.c.resource_class,
                peaks.c.peak,
                inv.c.total,
                inv.c.reserved,
                inv.c.allocation_ratio,
            ).select_from(
                peaks.outerjoin(
                    inv,
                    (inv.c.provider_id == peaks.c.provider_id)
                    & (inv.c.resource_class == peaks.c.resource_class),
                )
            )
        )
        out = []
        for provider_id, rc, peak, total, reserved, ratio in rows:
            cap = 0 if total is None else capacity_of(int(total), int(reserved), float(ratio))
            if int(peak) > cap:
                out.append((int(provider_id), str(rc), int(peak), cap))
        return out

    def vlan_clashes(self) -> list[tuple[int, int]]:
        """Audit: (provider_id, tag) pairs where one VLAN tag is held twice at overlapping times."""
        a = AllocationRow.__table__.alias("a")
        b = AllocationRow.__table__.alias("b")
        q = (
            select(a.c.provider_id, a.c.vlan_tag)
            .select_from(
                a.join(
                    b,
                    (a.c.provider_id == b.c.provider_id)
                    & (a.c.vlan_tag == b.c.vlan_tag)
                    & (a.c.id < b.c.id)
                    & (a.c.start_s < b.c.end_s)
                    & (b.c.start_s < a.c.end_s),
                )
            )
            .where(a.c.vlan_tag.is_not(None))
            .distinct()
        )
        return [(int(p), int(t)) for p, t in self.session.execute(q)]

    def lease_count(self) -> int:
        q = select(func.count()).select_from(ConsumerRow).where(ConsumerRow.kind == "lease")
        return int(self.session.scalar(q) or 0)

    def class_in_use(self, resource_class: str) -> bool:
        allocs = (
            select(func.count())
            .select_from(AllocationRow)
            .where(AllocationRow.resource_class == resource_class)
        )
        invs = (
            select(func.count())
            .select_from(InventoryRow)
            .where(InventoryRow.resource_class == resource_class)
        )
        return bool(self.session.scalar(allocs)) or bool(self.session.scalar(invs))

    def booked_vlan_tags(self, provider_id: int, *, after_s: int) -> set[int]:
        """The VLAN tags of ``provider_id`` held by allocations ending after ``after_s``."""
        q = select(func.distinct(AllocationRow.vlan_tag)).where(
            AllocationRow.provider_id == provider_id,
            AllocationRow.vlan_tag.is_not(None),
            AllocationRow.end_s > after_s,
        )
        return {int(tag) for tag in self.session.scalars(q) if tag is not None}

    def insert_leases(self, leases: list[dict[str, Any]], allocations: list[list[dict[str, Any]]]) -> None:
        """Bulk-insert consumer rows (``leases``, each with a fresh ``uuid``) and, for each, its allocation
        rows (``allocations[i]`` without ``consumer_id``): two multi-row inserts rather than one ORM object
        per row, so tens of thousands of bookings load quickly. Checks nothing: audit before committing."""
        if not leases:
            return
        calendar_changes.mark_opaque(self.session)  # bulk loads are not described: caches rebuild
        self.session.execute(insert(ConsumerRow), leases)
        rows = self.session.execute(
            select(ConsumerRow.uuid, ConsumerRow.id).where(ConsumerRow.kind == "lease")
        )
        by_uuid = {str(u): int(i) for u, i in rows}
        filled = [
            {**alloc, "consumer_id": by_uuid[str(lease["uuid"])]}
            for lease, allocs in zip(leases, allocations, strict=True)
            for alloc in allocs
        ]
        if filled:
            self.session.execute(insert(AllocationRow), filled)

    def usage_on(
        self, pairs: Sequence[tuple[str, str]], start_s: int, end_s: int, now_s: int, *, exclude: int
    ) -> list[tuple[str, str, int, int, int]]:
        """(provider uuid, class, amount, start_s, end_s) of the live allocations (``live_consumer`` at
        ``now_s``) on these (provider uuid, class) pairs overlapping [start_s, end_s), but consumer
        ``exclude``'s."""
        if not pairs:
            return []
        a, c, p = tables.allocations, tables.consumers, tables.providers
        wanted = or_(*(and_(p.c.uuid == u, a.c.resource_class == rc) for u, rc in pairs))
        rows = self.session.execute(
            select(p.c.uuid, a.c.resource_class, a.c.amount, a.c.start_s, a.c.end_s)
            .select_from(a.join(c, c.c.id == a.c.consumer_id).join(p, p.c.id == a.c.provider_id))
            .where(
                wanted,
                a.c.consumer_id != exclude,
                a.c.end_s > start_s,
                a.c.start_s < end_s,
                live_consumer(now_s),
            )
        ).all()
        return [(str(u), str(rc), int(am), int(s), int(e)) for u, rc, am, s, e in rows]

    def capacities(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """(provider uuid, class) -> (total - reserved) x allocation ratio, for the pairs stocked."""
        if not pairs:
            return {}
        inv, p = tables.inventories, tables.providers
        wanted = or_(*(and_(p.c.uuid == u, inv.c.resource_class == rc) for u, rc in pairs))
        rows = self.session.execute(
            select(p.c.uuid, inv.c.resource_class, inv.c.total, inv.c.reserved, inv.c.allocation_ratio)
            .select_from(inv.join(p, p.c.id == inv.c.provider_id))
            .where(wanted)
        ).all()
        return {(str(u), str(rc)): capacity_of(int(t), int(r), float(ratio)) for u, rc, t, r, ratio in rows}
