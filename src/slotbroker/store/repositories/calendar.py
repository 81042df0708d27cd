"""The calendar generation: read and bump (every committed capacity change bumps it)."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from slotbroker.store.models import (
    CalendarStateRow,
    calendar_shard,
)


class CalendarRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def generation(self) -> int:
        """The calendar generation: the sum of its shards (see ``CalendarStateRow``)."""
        return int(self.session.scalar(select(func.coalesce(func.sum(CalendarStateRow.generation), 0))) or 0)

    def bump(self, shard_key: int = 0) -> None:
        """Every committed capacity change bumps this, so cached indexes in any replica notice."""
        self.session.execute(
            update(CalendarStateRow)
            .where(CalendarStateRow.id == calendar_shard(shard_key))
            .values(generation=CalendarStateRow.generation + 1)
        )
