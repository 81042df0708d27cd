"""Per-project quotas (``ProjectQuotaRow``): how much of a class a project may hold at once, and how many
resource-hours it may have booked from now on. Leases and holds both count (a hold is capacity taken).

``QuotaService.check_in`` runs inside the booking transaction, before the claim: it locks the project's
quota rows for the classes in question (PostgreSQL ``FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE`` already
serialises), so two bookings of one project cannot both pass a limit that only one of them fits. A
project without quota rows takes no lock and pays one indexed read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import ColumnElement, Table, and_, case, delete, func, or_, select

from slotbroker.domain.claims import FREEING_STATUSES, ConsumerKind
from slotbroker.domain.errors import FieldError, Forbidden, NotFound
from slotbroker.store.db import Database
from slotbroker.store.models import AllocationRow, ConsumerRow, ProjectQuotaRow
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire.leases import QuotaView, SetQuota

A = cast(Table, AllocationRow.__table__)
C = cast(Table, ConsumerRow.__table__)
Q = cast(Table, ProjectQuotaRow.__table__)
_FREEING = sorted(str(s) for s in FREEING_STATUSES)


@dataclass(frozen=True)
class QuotaItem:
    """One item of a booking as the quota sees it: ``pointer`` names it in the request (``/items/3``)."""

    resource_class: str
    amount: int
    pointer: str


def _live(now_s: int) -> ColumnElement[bool]:
    return and_(
        C.c.status.not_in(_FREEING),
        or_(C.c.kind != ConsumerKind.HOLD.value, C.c.expires_s.is_(None), C.c.expires_s > now_s),
    )


def peak(intervals: Iterable[tuple[int, int, int]], start_s: int, end_s: int) -> int:
    """Peak of the summed amounts of (start, end, amount) intervals over [start_s, end_s) (half-open)."""
    points: list[tuple[int, int]] = []
    for s, e, amount in intervals:
        if s < end_s and e > start_s:
            points.append((max(s, start_s), amount))
            if e < end_s:
                points.append((e, -amount))
    points.sort(key=lambda p: (p[0], p[1]))  # ends (negative) before starts at the same instant
    best = current = 0
    for _, d in points:
        current += d
        best = max(best, current)
    return best


class QuotaService:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- admin ----------------------------------------------------------------------------------------
    def get(self, project: str, resource_class: str) -> QuotaView:
        with UnitOfWork(self.db, readonly=True) as uow:
            row = uow.session.get(ProjectQuotaRow, (project, resource_class))
            if row is None:
                raise NotFound(f"no quota for {resource_class} in project {project}")
            return _view(row)

    def list(self, project: str) -> list[QuotaView]:
        with UnitOfWork(self.db, readonly=True) as uow:
            rows = uow.session.scalars(
                select(ProjectQuotaRow)
                .where(ProjectQuotaRow.project == project)
                .order_by(ProjectQuotaRow.resource_class)
            )
            return [_view(r) for r in rows]

    def put(self, project: str, resource_class: str, body: SetQuota) -> QuotaView:
        """Set (create or replace) a quota. It applies to bookings from now on, not to existing ones."""
        with UnitOfWork(self.db) as uow:
            row = uow.session.get(ProjectQuotaRow, (project, resource_class))
            if row is None:
                row = ProjectQuotaRow(project=project, resource_class=resource_class)
                uow.session.add(row)
            row.max_concurrent = body.max_concurrent
            row.max_resource_hours = body.max_resource_hours
            uow.commit()
            return _view(row)

    def delete(self, project: str, resource_class: str) -> None:
        with UnitOfWork(self.db) as uow:
            done = uow.session.execute(
                delete(ProjectQuotaRow).where(
                    ProjectQuotaRow.project == project, ProjectQuotaRow.resource_class == resource_class
                )
            )
            if not getattr(done, "rowcount", 0):
                raise NotFound(f"no quota for {resource_class} in project {project}")
            uow.commit()

    # -- enforcement (inside the booking's transaction) ----------------------------------------------
    def check_in(
        self,
        uow: UnitOfWork,
        project: str,
        items: Sequence[QuotaItem],
        start_s: int,
        end_s: int,
        now_s: int,
    ) -> None:
        """Refuse (``Forbidden``, code ``quota_exceeded``) if booking ``items`` over [start_s, end_s) on top
        of the project's live leases and holds breaks one of its quotas. Rows the caller deleted earlier
        in the same transaction (a lease being moved) no longer count."""
        wanted: dict[str, int] = defaultdict(int)
        pointers: dict[str, list[str]] = defaultdict(list)
        for it in items:
            wanted[it.resource_class] += it.amount
            pointers[it.resource_class].append(it.pointer)
        if not wanted:
            return
        session = uow.session
        quotas = session.execute(
            select(Q.c.resource_class, Q.c.max_concurrent, Q.c.max_resource_hours)
            .where(Q.c.project == project, Q.c.resource_class.in_(sorted(wanted)))
            .order_by(Q.c.resource_class)
            .with_for_update()
        ).all()
        errors: list[FieldError] = []
        details: list[str] = []
        for rc, max_concurrent, max_hours in quotas:
            broken: list[str] = []
            amount = wanted[rc]
            mine = and_(C.c.project == project, A.c.resource_class == rc, _live(now_s))
            joined = A.join(C, C.c.id == A.c.consumer_id)
            if max_concurrent is not None:
                rows = session.execute(
                    select(A.c.start_s, A.c.end_s, A.c.amount)
                    .select_from(joined)
                    .where(mine, A.c.start_s < end_s, A.c.end_s > start_s)
                ).all()
                used = peak(((int(s), int(e), int(a)) for s, e, a in rows), start_s, end_s)
                if used + amount > max_concurrent:
                    broken.append(
                        f"{rc}: project {project} holds up to {used} in the interval; {amount} more exceeds "
                        f"its quota of {max_concurrent} at any one time"
                    )
            if max_hours is not None:
                from_s = case((A.c.start_s > now_s, A.c.start_s), else_=now_s)
                booked = session.execute(
                    select(func.coalesce(func.sum(A.c.amount * (A.c.end_s - from_s)), 0))
                    .select_from(joined)
                    .where(mine, A.c.end_s > now_s)
                ).scalar_one()
                extra = amount * max(0, end_s - max(start_s, now_s))
                if int(booked) + extra > int(max_hours) * 3600:
                    broken.append(
                        f"{rc}: project {project} has {int(booked) / 3600:g} resource-hours booked from now "
                        f"on; {extra / 3600:g} more exceeds its quota of {max_hours}"
                    )
            if broken:
                details += broken
                errors += [FieldError(p, "; ".join(broken)) for p in pointers[rc]]
        if details:
            raise Forbidden("; ".join(details), errors, code="quota_exceeded")


def _view(row: ProjectQuotaRow) -> QuotaView:
    return QuotaView(
        project=row.project,
        resource_class=row.resource_class,
        max_concurrent=row.max_concurrent,
        max_resource_hours=row.max_resource_hours,
    )


__all__ = ["QuotaItem", "QuotaService", "peak"]
