"""Calendar feed tokens (``calendar_feeds``): stored as SHA-256 hashes like API tokens, but a table of
their own, so a feed URL pasted into a calendar app can read that feed and nothing else."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from slotbroker.store.models import CalendarFeedRow


class CalendarFeedRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: CalendarFeedRow) -> CalendarFeedRow:
        self.session.add(row)
        self.session.flush()
        return row

    def by_hash(self, token_hash: str) -> CalendarFeedRow | None:
        return self.session.scalars(
            select(CalendarFeedRow).where(CalendarFeedRow.token_hash == token_hash)
        ).first()

    def listed(self, project: str | None) -> list[CalendarFeedRow]:
        """The project's feeds (None: every project's), oldest first."""
        stmt = select(CalendarFeedRow).order_by(CalendarFeedRow.id)
        if project is not None:
            stmt = stmt.where(CalendarFeedRow.project == project)
        return list(self.session.scalars(stmt))

    def get(self, feed_id: int) -> CalendarFeedRow | None:
        return self.session.get(CalendarFeedRow, feed_id)

    def revoke(self, feed_id: int, at: datetime) -> None:
        self.session.execute(
            update(CalendarFeedRow)
            .where(CalendarFeedRow.id == feed_id, CalendarFeedRow.revoked_at.is_(None))
            .values(revoked_at=at)
        )
