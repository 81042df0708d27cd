"""Shared dependencies: the service container on app.state."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from slotbroker.services.allocation_requests import AllocationRequestService, ProviderUuids
from slotbroker.services.calendar_cache import CalendarCache
from slotbroker.services.candidates import CandidateService
from slotbroker.services.catalog import CatalogService
from slotbroker.services.claims import ClaimService
from slotbroker.services.find_slot import FindSlotService, FindSlotSettings
from slotbroker.services.inventory import InventoryService
from slotbroker.services.ivoa import IvoaService
from slotbroker.services.lease_events import LeaseEventLoop, LeaseHooks
from slotbroker.services.leases import LeasePolicy, LeaseService
from slotbroker.services.network import NetworkService
from slotbroker.services.offers import OfferService, OfferSettings
from slotbroker.services.planner import Planner
from slotbroker.services.quotas import QuotaService
from slotbroker.services.tokens import TokenService
from slotbroker.services.topology import TopologyService
from slotbroker.store.db import Database


@dataclass
class Services:
    db: Database
    inventory: InventoryService
    catalog: CatalogService
    network: NetworkService
    topology: TopologyService
    tokens: TokenService
    calendar: CalendarCache
    find_slot: FindSlotService
    claims: ClaimService
    allocation_requests: AllocationRequestService
    candidates: CandidateService
    quotas: QuotaService
    leases: LeaseService
    lease_events: LeaseEventLoop
    offers: OfferService
    ivoa: IvoaService
    planner: Planner  # jobs (docs/planner.md); its worker pool runs in the app's lifespan

    @classmethod
    def build(
        cls,
        db: Database,
        find_slot: FindSlotSettings | None = None,
        *,
        allocation_request_ttl_s: int = 600,
        hold_ttl_s: int = 300,
        lease_policy: LeasePolicy | None = None,
        event_loop_interval_s: float = 5.0,
        planner: Planner | None = None,
        pg_two_trips: bool = True,
    ) -> Services:
        calendar = CalendarCache(db)
        claims = ClaimService(db, pg_two_trips=pg_two_trips, policy=lease_policy)
        uuids = ProviderUuids(db)
        requests = AllocationRequestService(
            db, claims, uuids, ttl_s=allocation_request_ttl_s, hold_ttl_s=hold_ttl_s
        )
        find = FindSlotService(db, calendar, find_slot)
        find.window_hook = requests.attach
        quotas = QuotaService(db)
        lease_hooks = LeaseHooks()
        leases = LeaseService(db, claims, quotas, policy=lease_policy, hooks=lease_hooks)
        offers = OfferService(db, claims, find, OfferSettings(ttl_s=hold_ttl_s), quotas=quotas)
        planner = planner or Planner(db)
        planner.register(lease_hooks)  # lease start / before_end / end reach the lease's jobs
        return cls(
            db=db,
            inventory=InventoryService(db),
            catalog=CatalogService(db),
            network=NetworkService(db),
            topology=TopologyService(db),
            tokens=TokenService(db),
            calendar=calendar,
            find_slot=find,
            claims=claims,
            allocation_requests=requests,
            candidates=CandidateService(calendar, uuids, requests),
            quotas=quotas,
            leases=leases,
            lease_events=LeaseEventLoop(db, claims, lease_hooks, interval_s=event_loop_interval_s),
            offers=offers,
            ivoa=IvoaService(db, offers, leases),
            planner=planner,
        )


async def services(request: Request) -> Services:
    """Async so that FastAPI calls it on the event loop (a sync dependency costs a thread-pool hop)."""
    svc: Services = request.app.state.services
    return svc
