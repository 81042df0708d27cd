"""Repositories: the only place that knows how rows are queried; services reach them through the
unit of work (``uow.providers``, ``uow.allocations`` ...), one module per aggregate."""

from slotbroker.store.repositories.allocation_requests import AllocationRequestRepository
from slotbroker.store.repositories.calendar import CalendarRepository
from slotbroker.store.repositories.calendar_feeds import CalendarFeedRepository
from slotbroker.store.repositories.catalog import CatalogRepository
from slotbroker.store.repositories.find_slot_jobs import FindSlotJobRepository
from slotbroker.store.repositories.jobs import JobRepository
from slotbroker.store.repositories.leases import LeaseRepository
from slotbroker.store.repositories.names import NameRepository
from slotbroker.store.repositories.network import NetworkRepository
from slotbroker.store.repositories.offers import OfferRepository
from slotbroker.store.repositories.providers import ProviderRepository
from slotbroker.store.repositories.quotas import QuotaRepository
from slotbroker.store.repositories.snapshot import SnapshotRepository
from slotbroker.store.repositories.tokens import TokenRepository
from slotbroker.store.repositories.usage import AllocationRepository

__all__ = [
    "AllocationRepository",
    "AllocationRequestRepository",
    "CalendarFeedRepository",
    "CalendarRepository",
    "CatalogRepository",
    "FindSlotJobRepository",
    "JobRepository",
    "LeaseRepository",
    "NameRepository",
    "NetworkRepository",
    "OfferRepository",
    "ProviderRepository",
    "QuotaRepository",
    "SnapshotRepository",
    "TokenRepository",
]
