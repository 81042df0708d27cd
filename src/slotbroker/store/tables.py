"""The Core ``Table`` handles of the ORM models, named once, for statements that do not need the ORM
(set-based updates, window functions, the claim path's compiled statements). Modules import these
rather than each casting ``Row.__table__`` under a one-letter alias of its own."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table

from slotbroker.store.models import (
    AllocationRequestRow,
    AllocationRow,
    ApiTokenRow,
    CalendarFeedRow,
    CalendarStateRow,
    ConsumerRow,
    FacilityPortRow,
    FindSlotJobRow,
    InventoryRow,
    IvoaOfferSetRow,
    JobLogRow,
    JobRow,
    JobTransitionRow,
    LeaseEventRow,
    LinkRow,
    OfferRow,
    OfferSetRow,
    ProjectQuotaRow,
    ProviderAggregateRow,
    ProviderRow,
    ProviderTraitRow,
)

allocation_requests = cast(Table, AllocationRequestRow.__table__)
allocations = cast(Table, AllocationRow.__table__)
api_tokens = cast(Table, ApiTokenRow.__table__)
calendar_feeds = cast(Table, CalendarFeedRow.__table__)
calendar_state = cast(Table, CalendarStateRow.__table__)
consumers = cast(Table, ConsumerRow.__table__)
facility_ports = cast(Table, FacilityPortRow.__table__)
find_slot_jobs = cast(Table, FindSlotJobRow.__table__)
inventories = cast(Table, InventoryRow.__table__)
ivoa_offer_sets = cast(Table, IvoaOfferSetRow.__table__)
job_logs = cast(Table, JobLogRow.__table__)
jobs = cast(Table, JobRow.__table__)
job_transitions = cast(Table, JobTransitionRow.__table__)
lease_events = cast(Table, LeaseEventRow.__table__)
links = cast(Table, LinkRow.__table__)
offers = cast(Table, OfferRow.__table__)
offer_sets = cast(Table, OfferSetRow.__table__)
project_quotas = cast(Table, ProjectQuotaRow.__table__)
provider_aggregates = cast(Table, ProviderAggregateRow.__table__)
providers = cast(Table, ProviderRow.__table__)
provider_traits = cast(Table, ProviderTraitRow.__table__)
