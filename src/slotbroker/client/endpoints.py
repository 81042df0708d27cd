"""Every endpoint of the slotbroker API, described once as a :class:`Call` builder, by area:
``inventory_calls``, ``search_calls``, ``booking_calls``, ``jobs_calls`` (``paging`` reads listings page
after page).

:class:`Endpoints` exposes them as methods; :class:`~slotbroker.client.Client` runs them synchronously
and :class:`~slotbroker.client.AsyncClient` returns awaitables, with the very same signatures.
"""

from __future__ import annotations

from slotbroker.client._spec import endpoint
from slotbroker.client.booking_calls import (
    accept_offer,
    allocation_candidates,
    cancel_lease,
    claim,
    compact_lease,
    compact_leases,
    create_calendar_feed,
    create_lease,
    create_offer_set,
    delete_lease,
    delete_quota,
    get_lease,
    get_offer,
    get_offer_set,
    get_quota,
    iter_leases,
    lease_ics,
    leases_ics,
    list_calendar_feeds,
    list_leases,
    list_quotas,
    put_quota,
    reject_offer,
    release_claim,
    rename_offer_set,
    renew_offer_set,
    revoke_calendar_feed,
    update_lease,
)
from slotbroker.client.inventory_calls import (
    create_facility_port,
    create_link,
    create_provider,
    create_resource_class,
    delete_facility_port,
    delete_inventory,
    delete_link,
    delete_provider,
    delete_resource_class,
    delete_trait,
    export_topology,
    get_facility_port,
    get_inventories,
    get_link,
    get_provider,
    get_provider_aggregates,
    get_provider_traits,
    get_resource_class,
    get_trait,
    healthz,
    import_topology,
    list_aggregates,
    list_facility_ports,
    list_links,
    list_providers,
    list_resource_classes,
    list_sites,
    list_traits,
    metrics,
    put_trait,
    readyz,
    set_inventories,
    set_inventory,
    set_provider_aggregates,
    set_provider_traits,
    update_facility_port,
    update_link,
    update_provider,
)
from slotbroker.client.jobs_calls import (
    cancel_job,
    create_job,
    get_job,
    iter_jobs,
    job_logs,
    list_jobs,
    streamed,
)
from slotbroker.client.paging import (
    paged,
)
from slotbroker.client.search_calls import (
    calendar,
    fabric_calendar,
    fabric_find_slot,
    find_available_slot,
    find_slot,
    find_slot_job,
)


class Endpoints:
    """The API's methods, shared by both clients (see :class:`~slotbroker.client._spec.endpoint`)."""

    healthz = endpoint(healthz)
    readyz = endpoint(readyz)
    metrics = endpoint(metrics)

    list_providers = endpoint(list_providers)
    get_provider = endpoint(get_provider)
    create_provider = endpoint(create_provider)
    update_provider = endpoint(update_provider)
    delete_provider = endpoint(delete_provider)
    get_inventories = endpoint(get_inventories)
    set_inventories = endpoint(set_inventories)
    set_inventory = endpoint(set_inventory)
    delete_inventory = endpoint(delete_inventory)
    get_provider_traits = endpoint(get_provider_traits)
    set_provider_traits = endpoint(set_provider_traits)
    get_provider_aggregates = endpoint(get_provider_aggregates)
    set_provider_aggregates = endpoint(set_provider_aggregates)

    list_resource_classes = endpoint(list_resource_classes)
    get_resource_class = endpoint(get_resource_class)
    create_resource_class = endpoint(create_resource_class)
    delete_resource_class = endpoint(delete_resource_class)
    list_traits = endpoint(list_traits)
    get_trait = endpoint(get_trait)
    put_trait = endpoint(put_trait)
    delete_trait = endpoint(delete_trait)
    list_aggregates = endpoint(list_aggregates)

    list_links = endpoint(list_links)
    get_link = endpoint(get_link)
    create_link = endpoint(create_link)
    update_link = endpoint(update_link)
    delete_link = endpoint(delete_link)
    list_facility_ports = endpoint(list_facility_ports)
    get_facility_port = endpoint(get_facility_port)
    create_facility_port = endpoint(create_facility_port)
    update_facility_port = endpoint(update_facility_port)
    delete_facility_port = endpoint(delete_facility_port)

    export_topology = endpoint(export_topology)
    import_topology = endpoint(import_topology)

    find_slot = endpoint(find_slot)
    find_slot_job = endpoint(find_slot_job)
    calendar = endpoint(calendar)
    fabric_find_slot = endpoint(fabric_find_slot)
    find_available_slot = endpoint(find_available_slot)
    fabric_calendar = endpoint(fabric_calendar)

    create_offer_set = endpoint(create_offer_set)
    get_offer_set = endpoint(get_offer_set)
    rename_offer_set = endpoint(rename_offer_set)
    renew_offer_set = endpoint(renew_offer_set)
    get_offer = endpoint(get_offer)
    accept_offer = endpoint(accept_offer)
    reject_offer = endpoint(reject_offer)

    create_lease = endpoint(create_lease)
    list_leases = endpoint(list_leases)
    iter_leases = paged(iter_leases)
    get_lease = endpoint(get_lease)
    update_lease = endpoint(update_lease)
    compact_lease = endpoint(compact_lease)
    compact_leases = endpoint(compact_leases)
    cancel_lease = endpoint(cancel_lease)
    delete_lease = endpoint(delete_lease)
    leases_ics = endpoint(leases_ics)
    lease_ics = endpoint(lease_ics)
    list_sites = endpoint(list_sites)
    create_calendar_feed = endpoint(create_calendar_feed)
    list_calendar_feeds = endpoint(list_calendar_feeds)
    revoke_calendar_feed = endpoint(revoke_calendar_feed)
    list_quotas = endpoint(list_quotas)
    get_quota = endpoint(get_quota)
    put_quota = endpoint(put_quota)
    delete_quota = endpoint(delete_quota)

    claim = endpoint(claim)
    release_claim = endpoint(release_claim)
    allocation_candidates = endpoint(allocation_candidates)

    create_job = endpoint(create_job)
    list_jobs = endpoint(list_jobs)
    iter_jobs = paged(iter_jobs)
    get_job = endpoint(get_job)
    cancel_job = endpoint(cancel_job)
    job_logs = endpoint(job_logs)
    job_events = streamed()
