"""A per-process calendar index, refreshed when the database's calendar generation moves.

Each API replica keeps its own index. Before answering, it reads the generation (one indexed row) and
rebuilds when it moved, or when a hold it counted has since expired (so freed capacity shows up without
any write). The database stays the only authority on capacity: a stale index can only cost a retry at
claim time, never an overbooking.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from sqlalchemy import func, select

from slotbroker.engine import CalendarIndex
from slotbroker.services.calendar_snapshot import holding_consumers, load_snapshot
from slotbroker.store.db import Database
from slotbroker.store.models import ConsumerRow
from slotbroker.store.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class CachedIndex:
    index: CalendarIndex
    generation: int
    built_at_s: int
    stale_after_s: int | None  # the first hold expiry after the build: usage drops then


class CalendarCache:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._cached: CachedIndex | None = None
        self.rebuilds = 0

    def current(self, now_s: int | None = None) -> CachedIndex:
        now = int(time.time()) if now_s is None else now_s
        with UnitOfWork(self.db, readonly=True) as uow:
            generation = uow.calendar.generation()
            cached = self._cached
            if (
                cached is not None
                and cached.generation == generation
                and (cached.stale_after_s is None or now < cached.stale_after_s)
            ):
                return cached
            with self._lock:  # one rebuild at a time; others wait and reuse it
                cached = self._cached
                if (
                    cached is not None
                    and cached.generation == generation
                    and (cached.stale_after_s is None or now < cached.stale_after_s)
                ):
                    return cached
                snapshot = load_snapshot(uow, now_s=now)
                next_expiry = uow.session.scalar(
                    select(func.min(ConsumerRow.expires_s)).where(
                        ConsumerRow.kind == "hold", ConsumerRow.expires_s > now, holding_consumers(now)
                    )
                )
                fresh = CachedIndex(
                    CalendarIndex(snapshot, generation=generation),
                    generation,
                    now,
                    int(next_expiry) if next_expiry is not None else None,
                )
                self._cached = fresh
                self.rebuilds += 1
                return fresh

    def invalidate(self) -> None:
        with self._lock:
            self._cached = None
