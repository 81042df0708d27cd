"""Project quotas and the project's live usage a quota is checked against."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, case, delete, func, or_, select
from sqlalchemy.orm import Session

from slotbroker.store import tables
from slotbroker.store.models import ProjectQuotaRow
from slotbroker.store.prebuilt import pad, run_compiled, session_connection
from slotbroker.store.repositories.usage import live_consumer

_q = tables.project_quotas.c


@functools.cache
def _lock_limits(n: int) -> Any:
    """The statement of ``lock_limits`` over n classes (:c0 ...). Every booking runs it (a project
    without quotas reads no row): compiled once per padded n, run on the cursor (``store/prebuilt.py``)."""
    return (
        select(_q.resource_class, _q.max_concurrent, _q.max_resource_hours)
        .where(
            _q.project == bindparam("project"),
            or_(*(_q.resource_class == bindparam(f"c{i}") for i in range(n))),
        )
        .order_by(_q.resource_class)
        .with_for_update()
    )


class QuotaRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, project: str, resource_class: str) -> ProjectQuotaRow | None:
        return self.session.get(ProjectQuotaRow, (project, resource_class))

    def of_project(self, project: str) -> list[ProjectQuotaRow]:
        return list(
            self.session.scalars(
                select(ProjectQuotaRow)
                .where(ProjectQuotaRow.project == project)
                .order_by(ProjectQuotaRow.resource_class)
            )
        )

    def put(
        self, project: str, resource_class: str, max_concurrent: int | None, max_resource_hours: int | None
    ) -> ProjectQuotaRow:
        row = self.get(project, resource_class)
        if row is None:
            row = ProjectQuotaRow(project=project, resource_class=resource_class)
            self.session.add(row)
        row.max_concurrent = max_concurrent
        row.max_resource_hours = max_resource_hours
        return row

    def delete(self, project: str, resource_class: str) -> bool:
        done = self.session.execute(
            delete(ProjectQuotaRow).where(
                ProjectQuotaRow.project == project, ProjectQuotaRow.resource_class == resource_class
            )
        )
        return bool(getattr(done, "rowcount", 0))

    def lock_limits(self, project: str, classes: list[str]) -> list[tuple[str, int | None, int | None]]:
        """(class, max_concurrent, max_resource_hours) of the project's quotas on ``classes``, locked
        (``FOR UPDATE``) so two bookings of one project cannot both pass a limit only one fits."""
        if not classes:
            return []
        keys = pad(sorted(set(classes)))
        params: dict[str, Any] = {"project": project}
        params.update((f"c{i}", rc) for i, rc in enumerate(keys))
        # flushed first: a quota set in this transaction is seen
        rows = run_compiled(session_connection(self.session), _lock_limits, len(keys), params)
        return [(str(rc), _opt_int(mc), _opt_int(mh)) for rc, mc, mh in rows]

    def live_spans(
        self, project: str, resource_class: str, start_s: int, end_s: int, now_s: int
    ) -> list[tuple[int, int, int]]:
        """(start, end, amount) of the project's live rows of the class overlapping [start_s, end_s)."""
        allocations, consumers = tables.allocations, tables.consumers
        rows = self.session.execute(
            select(allocations.c.start_s, allocations.c.end_s, allocations.c.amount)
            .select_from(allocations.join(consumers, consumers.c.id == allocations.c.consumer_id))
            .where(
                self._mine(project, resource_class, now_s),
                allocations.c.start_s < end_s,
                allocations.c.end_s > start_s,
            )
        ).all()
        return [(int(s), int(e), int(a)) for s, e, a in rows]

    def booked_seconds(self, project: str, resource_class: str, now_s: int) -> int:
        """Amount x seconds of the project's live rows of the class from ``now_s`` on."""
        allocations, consumers = tables.allocations, tables.consumers
        from_s = case((allocations.c.start_s > now_s, allocations.c.start_s), else_=now_s)
        booked = self.session.execute(
            select(func.coalesce(func.sum(allocations.c.amount * (allocations.c.end_s - from_s)), 0))
            .select_from(allocations.join(consumers, consumers.c.id == allocations.c.consumer_id))
            .where(self._mine(project, resource_class, now_s), allocations.c.end_s > now_s)
        ).scalar_one()
        return int(booked)

    @staticmethod
    def _mine(project: str, resource_class: str, now_s: int) -> ColumnElement[bool]:
        return and_(
            tables.consumers.c.project == project,
            tables.allocations.c.resource_class == resource_class,
            live_consumer(now_s),
        )


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)
