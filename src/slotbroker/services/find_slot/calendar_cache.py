"""A per-process calendar index, refreshed when the database's calendar generation moves.

Each API replica keeps its own index. Before answering, it reads the generation (one indexed row) and
rebuilds when it moved, or when a hold it counted has since expired (so freed capacity shows up without
any write). The database stays the only authority on capacity: a stale index can only cost a retry at
claim time, never an overbooking.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from slotbroker.engine import CalendarIndex
from slotbroker.services.find_slot.calendar_snapshot import load_snapshot
from slotbroker.store.db import Database
from slotbroker.store.repositories.snapshot import committed_generation
from slotbroker.store.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class Catalog:
    """What find-slot validates names against, read with the index so it needs no query per request."""

    custom_classes: frozenset[str]
    stocked_classes: frozenset[str]  # classes some host has an inventory of
    custom_traits: frozenset[str]
    sites: frozenset[str]
    hosts: frozenset[str]
    ports: frozenset[tuple[str, str]]  # (site, port)
    host_site: Mapping[str, str]


@dataclass(frozen=True)
class CachedIndex:
    index: CalendarIndex
    catalog: Catalog
    generation: int
    built_at_s: int
    stale_after_s: int | None  # the first hold expiry after the build: usage drops then

    def fresh_at(self, generation: int, now_s: int) -> bool:
        return self.generation == generation and (self.stale_after_s is None or now_s < self.stale_after_s)


class CalendarCache:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._cached: CachedIndex | None = None
        self.rebuilds = 0

    def generation(self) -> int:
        """The committed calendar generation: one primary-key read, no ORM session."""
        return committed_generation(self.db.engine)

    def current(self, now_s: int | None = None) -> CachedIndex:
        now = int(time.time()) if now_s is None else now_s
        cached = self._cached
        if cached is not None and cached.fresh_at(self.generation(), now):
            return cached
        with self._lock, UnitOfWork(self.db, readonly=True) as uow:  # one rebuild at a time; others reuse it
            generation = uow.calendar.generation()
            cached = self._cached
            if cached is not None and cached.fresh_at(generation, now):
                return cached
            snapshot = load_snapshot(uow, now_s=now)
            next_expiry = uow.snapshot.next_hold_expiry(now)
            catalog = Catalog(
                custom_classes=uow.catalog.custom_class_names(),
                stocked_classes=frozenset(rc for host in snapshot.hosts for rc in host.inventories),
                custom_traits=uow.catalog.custom_trait_names(),
                sites=frozenset(site.name for site in snapshot.sites),
                hosts=frozenset(host.name for host in snapshot.hosts),
                ports=frozenset((port.site, port.name) for port in snapshot.ports),
                host_site={host.name: host.site for host in snapshot.hosts},
            )
            fresh = CachedIndex(
                CalendarIndex(snapshot, generation=generation),
                catalog,
                generation,
                now,
                next_expiry,
            )
            self._cached = fresh
            self.rebuilds += 1
            return fresh

    def invalidate(self) -> None:
        with self._lock:
            self._cached = None
