"""Unit of work: one transaction, its repositories, commit or roll back as a whole (Cosmic Python).

Use it as a context manager; leaving without ``commit()`` rolls back, so an exception half-way through
a use case can never leave a partial write behind.

A unit of work of its own (not nested in a caller's connection) records what it does to the calendar
(``store/calendar_changes.py``) and, when it commits, hands that record to the commit listeners of its
database (``listen``; the composition root registers the calendar cache). Services never call the cache.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from slotbroker.store import calendar_changes
from slotbroker.store.calendar_changes import CalendarChanges
from slotbroker.store.db import Database
from slotbroker.store.repositories import (
    AllocationRepository,
    AllocationRequestRepository,
    CalendarFeedRepository,
    CalendarRepository,
    CatalogRepository,
    FindSlotJobRepository,
    JobRepository,
    LeaseRepository,
    NameRepository,
    NetworkRepository,
    OfferRepository,
    ProviderRepository,
    QuotaRepository,
    SecretRepository,
    SnapshotRepository,
    TokenRepository,
)


class CommitListener(Protocol):
    """Told about every commit that touched the calendar, in two steps around the COMMIT itself."""

    def committing(self) -> int:
        """The COMMIT is about to run: a ticket (increasing) that names this commit."""

    def committed(self, ticket: int, changes: CalendarChanges | None) -> None:
        """The commit of ``ticket`` is durable (``changes``), or failed (None)."""


_LISTENERS: dict[int, tuple[weakref.ref[Database], weakref.WeakSet[CommitListener]]] = {}
_LISTENERS_LOCK = threading.Lock()


def listen(db: Database, listener: CommitListener) -> None:
    """Tell ``listener`` about the calendar commits of units of work on ``db`` (this object: another
    ``Database`` on the same URL is another replica as far as its caches go). Held weakly: a services
    graph that is dropped stops listening."""
    with _LISTENERS_LOCK:
        found = _LISTENERS.get(id(db))
        if found is None or found[0]() is not db:
            key = id(db)
            table = _LISTENERS  # bound now: the callback may run at interpreter exit, globals gone
            found = table[key] = (weakref.ref(db, lambda _: table.pop(key, None)), weakref.WeakSet())
        found[1].add(listener)


def listeners(db: Database) -> list[CommitListener]:
    found = _LISTENERS.get(id(db))
    return list(found[1]) if found is not None and found[0]() is db else []


_REPOSITORIES: dict[str, Callable[[Session], object]] = {
    "providers": ProviderRepository,
    "catalog": CatalogRepository,
    "network": NetworkRepository,
    "allocations": AllocationRepository,
    "calendar": CalendarRepository,
    "tokens": TokenRepository,
    "quotas": QuotaRepository,
    "leases": LeaseRepository,
    "offers": OfferRepository,
    "allocation_requests": AllocationRequestRepository,
    "secrets": SecretRepository,
    "find_slot_jobs": FindSlotJobRepository,
    "snapshot": SnapshotRepository,
    "jobs": JobRepository,
    "names": NameRepository,
    "feeds": CalendarFeedRepository,
}


class UnitOfWork:
    session: Session
    providers: ProviderRepository
    catalog: CatalogRepository
    network: NetworkRepository
    allocations: AllocationRepository
    calendar: CalendarRepository
    tokens: TokenRepository
    quotas: QuotaRepository
    leases: LeaseRepository
    offers: OfferRepository
    allocation_requests: AllocationRequestRepository
    secrets: SecretRepository
    find_slot_jobs: FindSlotJobRepository
    snapshot: SnapshotRepository
    jobs: JobRepository
    names: NameRepository
    feeds: CalendarFeedRepository
    changes: CalendarChanges | None

    def __init__(self, db: Database, *, readonly: bool = False, connection: Connection | None = None) -> None:
        """``connection``: nest in that connection's open transaction, as a SAVEPOINT - ``commit()``
        releases it, leaving without rolls back to it, and the caller's transaction goes on (the
        planner moves a lease inside the commit of a job's retry this way)."""
        self.db = db
        self.readonly = readonly
        self.connection = connection
        self._after_commit: list[Callable[[], object]] = []

    def __enter__(self) -> UnitOfWork:
        if self.connection is None:
            self.session = self.db.session(readonly=self.readonly)
        else:
            self.session = Session(
                bind=self.connection, join_transaction_mode="create_savepoint", expire_on_commit=False
            )
        self.session.begin()
        self.changes = (
            calendar_changes.start(self.session) if self.connection is None and not self.readonly else None
        )
        for name in _REPOSITORIES:  # a unit of work used again starts with fresh repositories
            self.__dict__.pop(name, None)
        return self

    def __getattr__(self, name: str) -> Any:
        """A repository is made on first use (``_REPOSITORIES``): most units of work use two or three
        of the sixteen, and the hot ones run thousands of times a second."""
        make = _REPOSITORIES.get(name)
        if make is None or "session" not in self.__dict__:
            raise AttributeError(name)
        repo = self.__dict__[name] = make(self.session)
        return repo

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self.session.in_transaction():
                self.session.rollback()
        finally:
            self.session.close()

    def commit(self) -> None:
        changes = self.changes
        told = listeners(self.db) if changes is not None and changes.touched else []
        tickets = [(listener, listener.committing()) for listener in told]
        try:
            self.session.commit()
        except BaseException:
            for listener, ticket in tickets:
                listener.committed(ticket, None)
            raise
        if changes is not None:  # a unit of work may go on after a commit: record afresh
            self.changes = calendar_changes.start(self.session)
        for listener, ticket in tickets:
            listener.committed(ticket, changes)
        done, self._after_commit = self._after_commit, []
        for callback in done:
            callback()

    def after_commit(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` once the next ``commit()`` succeeded (never if the work is rolled back): for
        effects outside the database that must not happen for a write that did not. Nested in a caller's
        connection, that commit only releases a savepoint: register with the caller's unit of work."""
        self._after_commit.append(callback)

    def rollback(self) -> None:
        self.session.rollback()
        self._after_commit = []
        if self.changes is not None:
            self.changes = calendar_changes.start(self.session)
