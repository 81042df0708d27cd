"""The calendar generation: read and bump (every committed capacity change bumps it)."""

from __future__ import annotations

from sqlalchemy import Integer, bindparam, func, select, update
from sqlalchemy.orm import Session

from slotbroker.store import calendar_changes
from slotbroker.store.models import (
    CalendarStateRow,
    calendar_shard,
)
from slotbroker.store.tables import calendar_state

# The one bump statement (:shard is a shard's id, ``calendar_shard(key)``): the claim path runs it too,
# on its own and inside its PostgreSQL write (``store/claims/statements.py``).
BUMP_CALENDAR = (
    update(calendar_state)
    .where(calendar_state.c.id == bindparam("shard", 0, type_=Integer))
    .values(generation=calendar_state.c.generation + 1)
)


class CalendarRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def generation(self) -> int:
        """The calendar generation: the sum of its shards (see ``CalendarStateRow``)."""
        return int(self.session.scalar(select(func.coalesce(func.sum(CalendarStateRow.generation), 0))) or 0)

    def bump(self, shard_key: int = 0) -> None:
        """Every committed capacity change bumps this, so cached indexes in any replica notice."""
        self.session.connection().execute(BUMP_CALENDAR, {"shard": calendar_shard(shard_key)})
        calendar_changes.bumped(self.session)
