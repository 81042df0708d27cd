"""The composition root: ``Settings`` mapped to every service's settings, and the service graph built, here.

Every adapter (the API, the CLI, the planner's workers, the benchmarks) builds its services with
``build_services``, so a ``SLOTBROKER_*`` setting reaches the same services whichever way a request comes
in; a second mapping elsewhere is how a setting gets lost on one path. Background loops are not started
here: the API runs them in one lifespan (``api/background.py``), a worker runs its own pool.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from slotbroker.config import Settings
from slotbroker.domain.limits import BookingPolicy
from slotbroker.services.access.tokens import TokenService
from slotbroker.services.booking.allocation_request_bodies import ProviderUuids
from slotbroker.services.booking.allocation_request_ids import IdSealer, key_source
from slotbroker.services.booking.allocation_requests import AllocationRequestService
from slotbroker.services.booking.calendar_feeds import CalendarFeeds
from slotbroker.services.booking.claims import ClaimService
from slotbroker.services.booking.lease_cancel import LeaseCanceller
from slotbroker.services.booking.lease_compact import LeaseCompactor
from slotbroker.services.booking.lease_events import LeaseEventLoop, LeaseHooks, Sweep
from slotbroker.services.booking.lease_rebook import LeaseRebooker
from slotbroker.services.booking.lease_rehost import LeaseRehoster
from slotbroker.services.booking.leases import LeaseService
from slotbroker.services.booking.offer_set_edits import OfferSetEditor
from slotbroker.services.booking.offers import OfferService, OfferSettings
from slotbroker.services.booking.quotas import QuotaService
from slotbroker.services.find_slot.calendar_cache import CalendarCache
from slotbroker.services.find_slot.candidates import CandidateService
from slotbroker.services.find_slot.service import FindSlotService, FindSlotSettings
from slotbroker.services.find_slot.site_summaries import SiteSummaries
from slotbroker.services.inventory.catalog import CatalogService
from slotbroker.services.inventory.network import NetworkService
from slotbroker.services.inventory.service import InventoryService
from slotbroker.services.inventory.topology import TopologyService
from slotbroker.services.names import NameResolver
from slotbroker.services.planner import Planner, PlannerSettings
from slotbroker.services.planner.asap import JobAsap
from slotbroker.services.planner.slurm_drift import SlurmDriftSync, drift_job, drift_sync
from slotbroker.services.protocols.fabric.calendar import FabricCalendarService
from slotbroker.services.protocols.fabric.search import FabricFindSlot
from slotbroker.services.protocols.ivoa import IvoaService
from slotbroker.store.db import Database
from slotbroker.store.unit_of_work import listen

if TYPE_CHECKING:
    from slotbroker.services.planner.distributed import Distributed
    from slotbroker.services.planner.provisioners.slurm_config import SlurmConfig


@dataclass
class Services:
    """The service graph of one process on one database."""

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
    lease_events: LeaseEventLoop  # its periodic jobs include the offers' expiry sweep
    offers: OfferService
    ivoa: IvoaService
    fabric_find_slot: FabricFindSlot
    fabric_calendar: FabricCalendarService
    planner: Planner  # jobs (docs/planner.md); its worker pool runs where the adapter says
    job_asap: JobAsap
    offer_sets: OfferSetEditor  # rename and renew
    lease_cancel: LeaseCanceller  # refuses to stop running jobs unless forced
    sites: SiteSummaries
    feeds: CalendarFeeds  # read-only iCalendar URLs with their own revocable secrets
    names: NameResolver  # what a user typed for an id (full id, unique prefix or name) -> the id
    compaction: LeaseCompactor  # PENDING leases moved to their earliest start (decision 0039)
    rebooking: LeaseRebooker  # a reservation re-placed by a request as if it were gone (decision 0045)

    def close(self) -> None:
        """Stop the find-slot job threads and the planner's release threads, and close the database's
        connections (CLI commands, benches)."""
        self.find_slot.shutdown()
        self.planner.close()
        self.db.dispose()


# -- Settings -> each service's settings ---------------------------------------------------------------------


def find_slot_settings(settings: Settings) -> FindSlotSettings:
    return FindSlotSettings(
        max_range_s=settings.find_slot_max_range_days * 86400,
        async_cost=settings.find_slot_async_cost,
        cache_ttl_s=settings.find_slot_cache_ttl_s,
        job_ttl_s=settings.find_slot_job_ttl_s,
        budget_ms=settings.find_slot_budget_ms if settings.find_slot_budget_ms > 0 else None,
    )


def booking_policy(settings: Settings) -> BookingPolicy:
    return BookingPolicy(
        max_duration_s=settings.max_lease_duration_s,
        extension_window_s=settings.extension_window_s,
        max_hold_s=settings.max_hold_s,
        before_end_notice_s=settings.before_end_notice_s,
    )


def offer_settings(settings: Settings) -> OfferSettings:
    return OfferSettings(ttl_s=settings.offer_ttl_s, before_end_notice_s=settings.before_end_notice_s)


def planner_settings(settings: Settings) -> PlannerSettings:
    """The planner's settings, with this process's choice of provisioners (``Settings.provisioners``...)."""
    return replace(
        PlannerSettings(),
        enabled=settings.provisioners,
        roles=dict(settings.provisioner_roles),
        local_run_as=settings.local_run_as,
    )


def planner_workers(settings: Settings, planner: Planner) -> int:
    """Steps the server's embedded pool runs at once: ``Settings.planner_workers``, or the planner's
    default when unset. 0 disables the pool (tests; or a fleet where only ``slotbroker admin worker``
    processes run jobs)."""
    value = settings.planner_workers
    return int(planner.settings.workers if value is None else value)


# -- the graph -----------------------------------------------------------------------------------------------


def build_claims(settings: Settings, db: Database) -> ClaimService:
    """The claim service: the booking policy, and the PostgreSQL two-round-trip executor or not."""
    return ClaimService(db, pg_two_trips=settings.pg_two_trips, policy=booking_policy(settings))


def _rehost(settings: Settings, db: Database, claims: ClaimService | None) -> LeaseRehoster:
    return LeaseRehoster(claims or build_claims(settings, db))


def build_planner(settings: Settings, db: Database, claims: ClaimService | None = None) -> Planner:
    """The planner with the provisioners ``settings`` enable. With ``Settings.planner_procrastinate``
    (PostgreSQL) its enqueues defer procrastinate tasks for ``slotbroker admin worker --procrastinate``."""
    if settings.planner_procrastinate:
        return build_distributed(settings, db, claims)[0]
    return Planner(db, settings=planner_settings(settings), rehost=_rehost(settings, db, claims))


def build_distributed(
    settings: Settings, db: Database, claims: ClaimService | None = None
) -> tuple[Planner, Distributed]:
    """A planner whose enqueues are procrastinate defers, and the procrastinate wiring that runs its
    tasks (``slotbroker admin worker --procrastinate``)."""
    from slotbroker.services.planner.distributed import distributed_planner  # procrastinate: PostgreSQL only

    return distributed_planner(db, settings=planner_settings(settings), rehost=_rehost(settings, db, claims))


def build_services(
    settings: Settings, db: Database | None = None, *, planner: Planner | None = None
) -> Services:
    """Every service on ``db`` (default: a new ``Database(settings.database_url)``), configured from
    ``settings``; ``planner`` replaces the one ``build_planner`` would make (tests with fake provisioners)."""
    db = db or Database(settings.database_url)
    claims = build_claims(settings, db)
    policy = claims.policy
    calendar = CalendarCache(db)
    listen(db, calendar)  # the cache follows this graph's own commits (decision 0030)
    uuids = ProviderUuids(db)
    requests = AllocationRequestService(
        db,
        claims,
        uuids,
        sealer=IdSealer(key_source(db, settings.secret_key)),
        ttl_s=settings.allocation_request_ttl_s,
        hold_ttl_s=settings.offer_ttl_s,
    )
    find = FindSlotService(db, calendar, find_slot_settings(settings))
    find.window_hook = requests.attach
    quotas = QuotaService(db)
    lease_hooks = LeaseHooks()
    leases = LeaseService(db, claims, quotas, policy=policy, hooks=lease_hooks)
    offers = OfferService(db, claims, find, offer_settings(settings), quotas=quotas)
    lease_events = LeaseEventLoop(
        db,
        claims,
        lease_hooks,
        interval_s=settings.event_loop_interval_s,
        # reads expire due offers too; the sweep frees capacity sooner. A Sweep: its read joins the
        # loop's own due read, one read-only transaction a tick (decision 0049)
        periodic=[Sweep(db, read=offers.due_sets, act=offers.expire_sets)],
    )
    planner = planner or build_planner(settings, db, claims)
    planner.register(lease_hooks)  # lease start / before_end / end / cancel reach the lease's jobs
    # what Slurm holds outside the broker, booked by this graph's claims and leases
    slurm_drift = drift_job(db, planner.provisioners, claims=claims, leases=leases)
    if slurm_drift is not None:
        lease_events.periodic.append(slurm_drift)
    compactor = LeaseCompactor(leases, find)
    return Services(
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
        lease_events=lease_events,
        offers=offers,
        ivoa=IvoaService(db, offers, leases),
        fabric_find_slot=FabricFindSlot(find, calendar),
        fabric_calendar=FabricCalendarService(find, calendar),
        planner=planner,
        job_asap=JobAsap(planner, offers, leases),
        offer_sets=OfferSetEditor(db, offers, policy),
        lease_cancel=LeaseCanceller(leases, planner),
        sites=SiteSummaries(calendar),
        feeds=CalendarFeeds(db, leases),
        names=NameResolver(db),
        compaction=compactor,
        rebooking=LeaseRebooker(compactor),
    )


def build_slurm_drift(services: Services, config: SlurmConfig) -> SlurmDriftSync:
    """A Slurm drift sync with ``config`` on the graph's claims and leases (``slotbroker admin topology
    sync-slurm``), so it books blockers under the same policy as the server's periodic sync."""
    sync = drift_sync(
        services.db, services.planner.provisioners, config, claims=services.claims, leases=services.leases
    )
    assert sync is not None  # a config was given
    return sync


__all__ = [
    "Services",
    "booking_policy",
    "build_claims",
    "build_distributed",
    "build_planner",
    "build_services",
    "build_slurm_drift",
    "find_slot_settings",
    "offer_settings",
    "planner_settings",
    "planner_workers",
]
