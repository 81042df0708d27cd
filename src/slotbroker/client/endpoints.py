"""Every endpoint of the slotbroker API, described once as a :class:`Call` builder.

:class:`Endpoints` exposes them as methods; :class:`~slotbroker.client.Client` runs them synchronously
and :class:`~slotbroker.client.AsyncClient` returns awaitables, with the very same signatures.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import httpx
from pydantic import BaseModel

from slotbroker.client._spec import (
    Call,
    Id,
    Raw,
    body,
    endpoint,
    list_of,
    model,
    no_content,
    path,
    query,
    text,
)
from slotbroker.client.retry import parse_retry_after
from slotbroker.domain.providers import ProviderKind
from slotbroker.domain.topology import Topology
from slotbroker.services import commands as cmd
from slotbroker.services import views
from slotbroker.services.calendar_views import CalendarResponse
from slotbroker.services.fabric_views import FabricCalendar, FabricFindSlotRequest, FabricFindSlotResponse
from slotbroker.services.find_slot_views import FindSlotJob, FindSlotResult
from slotbroker.services.views import Health, Ready


# -- health ----------------------------------------------------------------------------------------------
def healthz() -> Call[Health]:
    """Liveness probe."""
    return Call("GET", "/healthz", model(Health))


def readyz() -> Call[Ready]:
    """Readiness probe: raises UnavailableError at once (never retried) when not ready."""
    return Call("GET", "/readyz", model(Ready), retry=False)


def metrics() -> Call[str]:
    """Prometheus metrics, as text."""
    return Call("GET", "/metrics", text)


# -- providers -------------------------------------------------------------------------------------------
def list_providers(
    *,
    kind: Sequence[ProviderKind | str] | None = None,
    parent: Id | None = None,
    trait: Sequence[str] | None = None,
    member_of: Sequence[str] | None = None,
    name: str | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> Call[views.ProviderList]:
    """One page of providers; pass ``next_cursor`` back as ``cursor`` for the next."""
    params = query(
        kind=list(kind) if kind is not None else None,
        parent=parent,
        trait=list(trait) if trait is not None else None,
        member_of=list(member_of) if member_of is not None else None,
        name=name,
        cursor=cursor,
        limit=limit,
    )
    return Call("GET", "/v1/providers", model(views.ProviderList), params=params)


def get_provider(uuid: Id) -> Call[views.ProviderView]:
    return Call("GET", path("/v1/providers/{}", uuid), model(views.ProviderView))


def create_provider(provider: cmd.CreateProvider | Raw) -> Call[views.ProviderView]:
    return Call("POST", "/v1/providers", model(views.ProviderView), json=body(provider))


def update_provider(uuid: Id, change: cmd.UpdateProvider | Raw) -> Call[views.ProviderView]:
    """Rename, move or relocate; ``change.generation`` must be the one you read."""
    return Call("PUT", path("/v1/providers/{}", uuid), model(views.ProviderView), json=body(change))


def delete_provider(uuid: Id) -> Call[None]:
    return Call("DELETE", path("/v1/providers/{}", uuid), no_content)


def get_inventories(uuid: Id) -> Call[views.InventoriesView]:
    return Call("GET", path("/v1/providers/{}/inventories", uuid), model(views.InventoriesView))


def set_inventories(uuid: Id, inventories: cmd.SetInventories | Raw) -> Call[views.InventoriesView]:
    """Replace all inventories (compare-and-swap on generation)."""
    return Call(
        "PUT",
        path("/v1/providers/{}/inventories", uuid),
        model(views.InventoriesView),
        json=body(inventories),
    )


def set_inventory(
    uuid: Id, resource_class: str, inventory: cmd.SetInventory | Raw
) -> Call[views.InventoriesView]:
    """Set one inventory (compare-and-swap on generation)."""
    return Call(
        "PUT",
        path("/v1/providers/{}/inventories/{}", uuid, resource_class),
        model(views.InventoriesView),
        json=body(inventory),
    )


def delete_inventory(uuid: Id, resource_class: str, *, generation: int) -> Call[views.InventoriesView]:
    """Remove one inventory; ``generation`` is the provider generation you read."""
    return Call(
        "DELETE",
        path("/v1/providers/{}/inventories/{}", uuid, resource_class),
        model(views.InventoriesView),
        params=query(generation=generation),
    )


def get_provider_traits(uuid: Id) -> Call[views.NamesView]:
    return Call("GET", path("/v1/providers/{}/traits", uuid), model(views.NamesView))


def set_provider_traits(uuid: Id, names: cmd.SetNames | Raw) -> Call[views.NamesView]:
    return Call("PUT", path("/v1/providers/{}/traits", uuid), model(views.NamesView), json=body(names))


def get_provider_aggregates(uuid: Id) -> Call[views.NamesView]:
    return Call("GET", path("/v1/providers/{}/aggregates", uuid), model(views.NamesView))


def set_provider_aggregates(uuid: Id, names: cmd.SetNames | Raw) -> Call[views.NamesView]:
    return Call("PUT", path("/v1/providers/{}/aggregates", uuid), model(views.NamesView), json=body(names))


# -- catalog ---------------------------------------------------------------------------------------------
def list_resource_classes() -> Call[list[views.ResourceClassView]]:
    return Call("GET", "/v1/resource-classes", list_of(views.ResourceClassView))


def get_resource_class(name: str) -> Call[views.ResourceClassView]:
    return Call("GET", path("/v1/resource-classes/{}", name), model(views.ResourceClassView))


def create_resource_class(
    resource_class: cmd.CreateResourceClass | Raw,
) -> Call[views.ResourceClassView]:
    """Register a ``CUSTOM_`` resource class (admin)."""
    return Call("POST", "/v1/resource-classes", model(views.ResourceClassView), json=body(resource_class))


def delete_resource_class(name: str) -> Call[None]:
    return Call("DELETE", path("/v1/resource-classes/{}", name), no_content)


def list_traits(*, custom: bool = False) -> Call[list[views.TraitView]]:
    return Call("GET", "/v1/traits", list_of(views.TraitView), params=query(custom=custom or None))


def get_trait(name: str) -> Call[views.TraitView]:
    return Call("GET", path("/v1/traits/{}", name), model(views.TraitView))


def put_trait(name: str) -> Call[views.TraitView]:
    """Register a ``CUSTOM_`` trait (admin); putting an existing one changes nothing."""
    return Call("PUT", path("/v1/traits/{}", name), model(views.TraitView))


def delete_trait(name: str) -> Call[None]:
    return Call("DELETE", path("/v1/traits/{}", name), no_content)


def list_aggregates() -> Call[list[views.AggregateView]]:
    return Call("GET", "/v1/aggregates", list_of(views.AggregateView))


# -- network ---------------------------------------------------------------------------------------------
def list_links() -> Call[list[views.LinkView]]:
    return Call("GET", "/v1/links", list_of(views.LinkView))


def get_link(uuid: Id) -> Call[views.LinkView]:
    return Call("GET", path("/v1/links/{}", uuid), model(views.LinkView))


def create_link(link: cmd.CreateLink | Raw) -> Call[views.LinkView]:
    return Call("POST", "/v1/links", model(views.LinkView), json=body(link))


def update_link(uuid: Id, change: cmd.UpdateLink | Raw) -> Call[views.LinkView]:
    return Call("PUT", path("/v1/links/{}", uuid), model(views.LinkView), json=body(change))


def delete_link(uuid: Id) -> Call[None]:
    return Call("DELETE", path("/v1/links/{}", uuid), no_content)


def list_facility_ports() -> Call[list[views.FacilityPortView]]:
    return Call("GET", "/v1/facility-ports", list_of(views.FacilityPortView))


def get_facility_port(uuid: Id) -> Call[views.FacilityPortView]:
    return Call("GET", path("/v1/facility-ports/{}", uuid), model(views.FacilityPortView))


def create_facility_port(port: cmd.CreateFacilityPort | Raw) -> Call[views.FacilityPortView]:
    return Call("POST", "/v1/facility-ports", model(views.FacilityPortView), json=body(port))


def update_facility_port(uuid: Id, change: cmd.UpdateFacilityPort | Raw) -> Call[views.FacilityPortView]:
    return Call("PUT", path("/v1/facility-ports/{}", uuid), model(views.FacilityPortView), json=body(change))


def delete_facility_port(uuid: Id) -> Call[None]:
    return Call("DELETE", path("/v1/facility-ports/{}", uuid), no_content)


# -- topology --------------------------------------------------------------------------------------------
def export_topology() -> Call[Topology]:
    return Call("GET", "/v1/topology", model(Topology))


def import_topology(document: Topology | Raw, *, prune: bool = False) -> Call[views.ImportReport]:
    """Import atomically; ``prune`` also deletes what the document omits."""
    return Call(
        "POST",
        "/v1/topology",
        model(views.ImportReport),
        json=body(document),
        params=query(prune=prune or None),
    )


# -- find-slot and calendar ------------------------------------------------------------------------------
Instant = datetime | str
"""A point in time: an aware ``datetime`` or an ISO 8601 string with an offset."""


def _instant(value: Instant) -> str:
    return value.isoformat() if isinstance(value, datetime) else value


def _result_or_job(response: httpx.Response) -> FindSlotResult | FindSlotJob:
    if response.status_code == 202:
        return FindSlotJob.model_validate_json(response.content)
    return FindSlotResult.model_validate_json(response.content)


def find_slot(request: Raw | BaseModel, *, prefer_async: bool = False) -> Call[FindSlotResult | FindSlotJob]:
    """Windows where ``request`` fits (a ``FindSlotResult``), or a ``FindSlotJob`` to poll when the server
    runs it in the background (``prefer_async=True``, or an expensive request); see ``wait_find_slot``."""
    return Call(
        "POST",
        "/v1/find-slot",
        _result_or_job,
        json=body(request),
        headers={"Prefer": "respond-async"} if prefer_async else None,
    )


def find_slot_job(job_id: Id) -> Call[FindSlotJob]:
    """A find-slot job's state (404 for another project's job unless you are an admin)."""
    return Call("GET", path("/v1/find-slot/jobs/{}", job_id), model(FindSlotJob))


def poll_find_slot_job(job_id: Id) -> Call[tuple[FindSlotJob, float | None]]:
    """``find_slot_job`` plus the server's ``Retry-After`` (seconds), for ``wait_find_slot``."""

    def decode(response: httpx.Response) -> tuple[FindSlotJob, float | None]:
        job = FindSlotJob.model_validate_json(response.content)
        return job, parse_retry_after(response.headers.get("Retry-After"))

    return Call("GET", path("/v1/find-slot/jobs/{}", job_id), decode)


def calendar(
    start: Instant,
    end: Instant,
    resolution: str = "day",
    kind: Sequence[str] | None = None,
    name: Sequence[str] | None = None,
    resource_class: Sequence[str] | None = None,
) -> Call[CalendarResponse]:
    """Capacity, peak usage and free per provider and class in ``hour``/``day``/``week`` buckets."""
    params = query(
        start=_instant(start),
        end=_instant(end),
        resolution=resolution,
        kind=list(kind) if kind is not None else None,
        name=list(name) if name is not None else None,
        resource_class=list(resource_class) if resource_class is not None else None,
    )
    return Call("GET", "/v1/calendar", model(CalendarResponse), params=params)


def fabric_find_slot(request: FabricFindSlotRequest | Raw) -> Call[FabricFindSlotResponse]:
    """FABRIC reports API find-slot (``POST /calendar/find-slot``)."""
    return Call("POST", "/calendar/find-slot", model(FabricFindSlotResponse), json=body(request))


def fabric_calendar(
    start_time: Instant,
    end_time: Instant,
    interval: str = "day",
    site: Sequence[str] | None = None,
    host: Sequence[str] | None = None,
    exclude_site: Sequence[str] | None = None,
    exclude_host: Sequence[str] | None = None,
) -> Call[FabricCalendar]:
    """FABRIC reports API calendar (``GET /calendar``): per interval, sites and hosts with peak usage."""
    params = query(
        start_time=_instant(start_time),
        end_time=_instant(end_time),
        interval=interval,
        site=list(site) if site is not None else None,
        host=list(host) if host is not None else None,
        exclude_site=list(exclude_site) if exclude_site is not None else None,
        exclude_host=list(exclude_host) if exclude_host is not None else None,
    )
    return Call("GET", "/calendar", model(FabricCalendar), params=params)


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
    fabric_calendar = endpoint(fabric_calendar)
