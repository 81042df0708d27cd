"""The calendar generation: read and bump (every committed capacity change bumps it)."""

from __future__ import annotations

from sqlalchemy import Integer, bindparam, func, select, update
from sqlalchemy.orm import Session

from slotbroker.store import calendar_changes
from slotbroker.store.models import (
    calendar_shard,
)
from slotbroker.store.prebuilt import fixed, run_compiled, session_connection
from slotbroker.store.tables import calendar_state

# The one bump statement (:shard is a shard's id, ``calendar_shard(key)``): the claim path runs it too,
# on its own and inside its PostgreSQL write (``store/claims/statements.py``).
BUMP_CALENDAR = (
    update(calendar_state)
    .where(calendar_state.c.id == bindparam("shard", 0, type_=Integer))
    .values(generation=calendar_state.c.generation + 1)
)


_generation = fixed(select(func.coalesce(func.sum(calendar_state.c.generation), 0)))


class CalendarRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def generation(self) -> int:
        """The calendar generation inside this unit of work: the sum of its shards (see
        ``CalendarStateRow``). Compiled once and run on the cursor (``store/prebuilt.py``): compaction
        and EASY's re-placing read it with every lease, where building it each time cost ~0.2 ms."""
        (row,) = run_compiled(session_connection(self.session), _generation, 0, {})
        return int(row[0] or 0)

    def bump(self, shard_key: int = 0) -> None:
        """Every committed capacity change bumps this, so cached indexes in any replica notice."""
        self.session.connection().execute(BUMP_CALENDAR, {"shard": calendar_shard(shard_key)})
        calendar_changes.bumped(self.session)
