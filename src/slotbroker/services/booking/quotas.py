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

from slotbroker.domain.errors import FieldError, Forbidden, NotFound
from slotbroker.store.db import Database
from slotbroker.store.models import ProjectQuotaRow
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire.leases import QuotaView, SetQuota


@dataclass(frozen=True)
class QuotaItem:
    """One item of a booking as the quota sees it: ``pointer`` names it in the request (``/items/3``)."""

    resource_class: str
    amount: int
    pointer: str


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
            row = uow.quotas.get(project, resource_class)
            if row is None:
                raise NotFound(f"no quota for {resource_class} in project {project}")
            return _view(row)

    def list(self, project: str) -> list[QuotaView]:
        with UnitOfWork(self.db, readonly=True) as uow:
            return [_view(r) for r in uow.quotas.of_project(project)]

    def put(self, project: str, resource_class: str, body: SetQuota) -> QuotaView:
        """Set (create or replace) a quota. It applies to bookings from now on, not to existing ones."""
        with UnitOfWork(self.db) as uow:
            row = uow.quotas.put(project, resource_class, body.max_concurrent, body.max_resource_hours)
            uow.commit()
            return _view(row)

    def delete(self, project: str, resource_class: str) -> None:
        with UnitOfWork(self.db) as uow:
            if not uow.quotas.delete(project, resource_class):
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
        quotas = uow.quotas.lock_limits(project, sorted(wanted))
        errors: list[FieldError] = []
        details: list[str] = []
        for rc, max_concurrent, max_hours in quotas:
            broken: list[str] = []
            amount = wanted[rc]
            if max_concurrent is not None:
                used = peak(uow.quotas.live_spans(project, rc, start_s, end_s, now_s), start_s, end_s)
                if used + amount > max_concurrent:
                    broken.append(
                        f"{rc}: project {project} holds up to {used} in the interval; {amount} more exceeds "
                        f"its quota of {max_concurrent} at any one time"
                    )
            if max_hours is not None:
                booked = uow.quotas.booked_seconds(project, rc, now_s)
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
