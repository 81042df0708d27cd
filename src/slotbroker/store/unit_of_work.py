"""Unit of work: one transaction, its repositories, commit or roll back as a whole (Cosmic Python).

Use it as a context manager; leaving without ``commit()`` rolls back, so an exception half-way through
a use case can never leave a partial write behind.
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

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
    SnapshotRepository,
    TokenRepository,
)


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
    find_slot_jobs: FindSlotJobRepository
    snapshot: SnapshotRepository
    jobs: JobRepository
    names: NameRepository
    feeds: CalendarFeedRepository

    def __init__(self, db: Database, *, readonly: bool = False, connection: Connection | None = None) -> None:
        """``connection``: nest in that connection's open transaction, as a SAVEPOINT - ``commit()``
        releases it, leaving without rolls back to it, and the caller's transaction goes on (the
        planner moves a lease inside the commit of a job's retry this way)."""
        self.db = db
        self.readonly = readonly
        self.connection = connection

    def __enter__(self) -> UnitOfWork:
        if self.connection is None:
            self.session = self.db.session(readonly=self.readonly)
        else:
            self.session = Session(
                bind=self.connection, join_transaction_mode="create_savepoint", expire_on_commit=False
            )
        self.session.begin()
        self.providers = ProviderRepository(self.session)
        self.catalog = CatalogRepository(self.session)
        self.network = NetworkRepository(self.session)
        self.allocations = AllocationRepository(self.session)
        self.calendar = CalendarRepository(self.session)
        self.tokens = TokenRepository(self.session)
        self.quotas = QuotaRepository(self.session)
        self.leases = LeaseRepository(self.session)
        self.offers = OfferRepository(self.session)
        self.allocation_requests = AllocationRequestRepository(self.session)
        self.find_slot_jobs = FindSlotJobRepository(self.session)
        self.snapshot = SnapshotRepository(self.session)
        self.jobs = JobRepository(self.session)
        self.names = NameRepository(self.session)
        self.feeds = CalendarFeedRepository(self.session)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self.session.in_transaction():
                self.session.rollback()
        finally:
            self.session.close()

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()
