"""Every endpoint of the slotbroker API, described once as a :class:`Call` builder.

:class:`Endpoints` exposes them as methods; :class:`~slotbroker.client.Client` runs them synchronously
and :class:`~slotbroker.client.AsyncClient` returns awaitables, with the very same signatures.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, ParamSpec, TypeVar, overload

import httpx
from pydantic import BaseModel

from slotbroker.client._spec import (
    AsyncRunner,
    Call,
    Id,
    Raw,
    SyncRunner,
    body,
    endpoint,
    finish,
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
from slotbroker.wire import providers as cmd
from slotbroker.wire import providers as views
from slotbroker.wire.calendar import CalendarResponse
from slotbroker.wire.calendar_feeds import CreatedFeed, CreateFeed, FeedView
from slotbroker.wire.claims import Candidates, ClaimView
from slotbroker.wire.fabric import (
    FabricCalendar,
    FabricFindSlotRequest,
    FabricFindSlotResponse,
    FabricResource,
)
from slotbroker.wire.find_slot import FindSlotJob, FindSlotResult
from slotbroker.wire.health import Health, Ready
from slotbroker.wire.jobs import CreateJob, JobEvent, JobList, JobLogs, JobOut
from slotbroker.wire.leases import (
    CreateLease,
    LeaseItemSpec,
    LeaseList,
    LeaseView,
    QuotaView,
    SetQuota,
    UpdateLease,
)
from slotbroker.wire.offers import AcceptedLease, OfferSetRequest, OfferSetView, OfferView
from slotbroker.wire.sites import SiteList

P = ParamSpec("P")
Item = TypeVar("Item")


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


def find_available_slot(
    start: Instant,
    end: Instant,
    duration: int,
    resources: Sequence[FabricResource | Raw],
    max_results: int = 1,
) -> Call[FabricFindSlotResponse]:
    """FABlib-style find-slot with FABRIC's argument names: windows of ``duration`` hours between ``start``
    and ``end`` where every resource fits, e.g. ``resources=[{"type": "compute", "site": "STAR",
    "cores": 8, "ram": 32, "components": {"GPU_A30": 1}}]``; ``max_results`` windows at most."""
    return fabric_find_slot(
        {
            "start": _instant(start),
            "end": _instant(end),
            "duration": duration,
            "resources": [body(r) for r in resources],
            "max_results": max_results,
        }
    )


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


# -- offers ----------------------------------------------------------------------------------------------
def create_offer_set(request: OfferSetRequest | Raw) -> Call[OfferSetView]:
    """Ask for offers: up to ``max_offers`` windows, each holding its capacity until it expires.

    A set where nothing fits is ``EMPTY`` (with the search's ``explanation``), not an error; a project over
    its quota raises :class:`QuotaExceededError`."""
    return Call("POST", "/v1/offer-sets", model(OfferSetView), json=body(request))


def get_offer_set(set_id: Id) -> Call[OfferSetView]:
    return Call("GET", path("/v1/offer-sets/{}", set_id), model(OfferSetView))


def rename_offer_set(set_id: Id, name: str) -> Call[OfferSetView]:
    """Give an offer set a name (its id, a unique prefix or its old name all work as ``set_id``)."""
    return Call("PATCH", path("/v1/offer-sets/{}", set_id), model(OfferSetView), json={"name": name})


def renew_offer_set(set_id: Id) -> Call[OfferSetView]:
    """Keep the set's open offers, and the capacity they hold, for another offer TTL from now.

    Raises :class:`ConflictError` when the set has no open offer left to renew."""
    return Call("POST", path("/v1/offer-sets/{}/renew", set_id), model(OfferSetView))


def get_offer(offer_id: Id) -> Call[OfferView]:
    return Call("GET", path("/v1/offers/{}", offer_id), model(OfferView))


def accept_offer(offer_id: Id) -> Call[AcceptedLease]:
    """Turn the offer's hold into a lease (the set's other offers are rejected).

    Raises :class:`OfferExpiredError` or :class:`OfferNotOpenError` (both ``ConflictError``)."""
    return Call("POST", path("/v1/offers/{}/accept", offer_id), model(AcceptedLease))


def reject_offer(offer_id: Id) -> Call[OfferView]:
    """Reject an offer and free its capacity now (idempotent)."""
    return Call("POST", path("/v1/offers/{}/reject", offer_id), model(OfferView))


# -- leases and quotas -----------------------------------------------------------------------------------
def create_lease(lease: CreateLease | Raw) -> Call[LeaseView]:
    """Claim explicit items for [start, end) as a lease (``project``: admins only)."""
    return Call("POST", "/v1/leases", model(LeaseView), json=body(lease))


def list_leases(
    *,
    status: Sequence[str] | None = None,
    project: str | None = None,
    start: Instant | None = None,
    end: Instant | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> Call[LeaseList]:
    """One page of leases in creation order (keyset); pass ``next_cursor`` back as ``cursor``.

    ``start``/``end``: only leases overlapping that interval; ``project``: admins only."""
    params = query(
        status=list(status) if status is not None else None,
        project=project,
        start=_instant(start) if start is not None else None,
        end=_instant(end) if end is not None else None,
        cursor=cursor,
        limit=limit,
    )
    return Call("GET", "/v1/leases", model(LeaseList), params=params)


def get_lease(lease_id: Id) -> Call[LeaseView]:
    return Call("GET", path("/v1/leases/{}", lease_id), model(LeaseView))


def update_lease(lease_id: Id, change: UpdateLease | Raw) -> Call[LeaseView]:
    """Extend, shorten or (PENDING) move a lease; ``change.generation`` must be the one you read.

    Raises :class:`ConcurrentUpdateError` (stale generation), :class:`InvalidStateError`,
    :class:`OutsideExtensionWindowError`, :class:`CapacityConflictError`, :class:`LeaseTooLongError` or
    :class:`QuotaExceededError`."""
    return Call("PATCH", path("/v1/leases/{}", lease_id), model(LeaseView), json=body(change))


def cancel_lease(lease_id: Id, *, force: bool = False) -> Call[LeaseView]:
    """Cancel a lease, releasing its capacity at once (idempotent); the cancelled lease.

    A lease with unfinished jobs raises :class:`JobsRunningError` naming them, unless ``force``."""
    params = query(force="true" if force else None)
    return Call("POST", path("/v1/leases/{}/cancel", lease_id), model(LeaseView), params=params)


def delete_lease(lease_id: Id, *, force: bool = False) -> Call[None]:
    """Cancel a lease (``DELETE``; same as :func:`cancel_lease` without the answer)."""
    params = query(force="true" if force else None)
    return Call("DELETE", path("/v1/leases/{}", lease_id), no_content, params=params)


def leases_ics(*, status: Sequence[str] | None = None) -> Call[str]:
    """The caller's leases as an iCalendar (RFC 5545) feed, as text."""
    params = query(status=list(status) if status is not None else None)
    return Call("GET", "/v1/leases.ics", text, params=params, headers={"Accept": "text/calendar"})


def lease_ics(lease_id: Id) -> Call[str]:
    """One lease as an iCalendar (RFC 5545) event, as text (import it into a calendar app)."""
    return Call("GET", path("/v1/leases/{}.ics", lease_id), text, headers={"Accept": "text/calendar"})


def create_calendar_feed(feed: CreateFeed | Raw | None = None) -> Call[CreatedFeed]:
    """A read-only iCalendar URL of your project's leases for calendar apps; its secret is in ``url``,
    shown only in this answer."""
    return Call("POST", "/v1/calendar-feeds", model(CreatedFeed), json=body(feed or {}))


def list_calendar_feeds() -> Call[list[FeedView]]:
    return Call("GET", "/v1/calendar-feeds", list_of(FeedView))


def revoke_calendar_feed(feed_id: int) -> Call[FeedView]:
    """Revoke a feed: its URL stops working at once."""
    return Call("DELETE", path("/v1/calendar-feeds/{}", str(feed_id)), model(FeedView))


def list_sites() -> Call[SiteList]:
    """Every site's capacity per class, what is free now and its hosts, links and ports."""
    return Call("GET", "/v1/sites", model(SiteList))


def list_quotas(project: str) -> Call[list[QuotaView]]:
    """A project's quotas (admin)."""
    return Call("GET", path("/v1/quotas/{}", project), list_of(QuotaView))


def get_quota(project: str, resource_class: str) -> Call[QuotaView]:
    """One quota (admin); ``NotFoundError`` when the project has none on that class."""
    return Call("GET", path("/v1/quotas/{}/{}", project, resource_class), model(QuotaView))


def put_quota(project: str, resource_class: str, quota: SetQuota | Raw) -> Call[QuotaView]:
    """Set a project's quota on a class (admin); it applies to bookings from now on."""
    return Call("PUT", path("/v1/quotas/{}/{}", project, resource_class), model(QuotaView), json=body(quota))


def delete_quota(project: str, resource_class: str) -> Call[None]:
    return Call("DELETE", path("/v1/quotas/{}/{}", project, resource_class), no_content)


# -- claims and allocation candidates ------------------------------------------------------------------


def claim(
    allocation_request: Id | None = None,
    *,
    items: Sequence[LeaseItemSpec | Raw] | None = None,
    start: Instant | None = None,
    end: Instant | None = None,
    kind: str | None = None,
    name: str | None = None,
    expires: Instant | None = None,
    uuid: Id | None = None,
) -> Call[ClaimView]:
    """Claim an allocation request by id (from find-slot or :func:`allocation_candidates`; alternates are
    tried on conflict), or explicit ``items`` over [``start``, ``end``).

    ``kind`` is ``lease`` (default) or ``hold`` (``expires``: default now + the offer TTL); ``uuid`` names
    the consumer of an explicit claim. Raises :class:`CapacityConflictError`,
    :class:`AllocationRequestExpiredError`, :class:`AllocationRequestClaimedError` ..."""
    consumer = {
        k: v
        for k, v in {
            "kind": kind,
            "name": name,
            "expires": _instant(expires) if expires is not None else None,
            "uuid": str(uuid) if uuid is not None else None,
        }.items()
        if v is not None
    }
    doc: dict[str, Any] = {"consumer": consumer}
    if allocation_request is not None:
        doc["allocation_request"] = str(allocation_request)
    if items is not None:
        doc["items"] = [body(it) for it in items]
    if start is not None:
        doc["start"] = _instant(start)
    if end is not None:
        doc["end"] = _instant(end)
    return Call("POST", "/v1/claims", model(ClaimView), json=doc)


def release_claim(consumer_uuid: Id) -> Call[None]:
    """Release a claim (idempotent)."""
    return Call("DELETE", path("/v1/claims/{}", consumer_uuid), no_content)


def allocation_candidates(
    *,
    resources: str | dict[str, int] | None = None,
    required: Sequence[str] | None = None,
    member_of: Sequence[str] | None = None,
    limit: int | None = None,
    start: Instant | None = None,
    end: Instant | None = None,
) -> Call[Candidates]:
    """Placement-style candidates over [start, end) (default the next hour), each claimable by id.

    ``resources``: ``"VCPU:8,MEMORY_MB:32768"`` or ``{"VCPU": 8, ...}``; ``required``: ``"TRAIT,!OTHER"``
    or ``"in:A,B"`` per entry (entries AND); ``member_of``: ``"in:agg1,agg2"`` / ``"!in:agg3"``."""
    if isinstance(resources, dict):
        resources = ",".join(f"{rc}:{amount}" for rc, amount in resources.items())
    params = query(
        resources=resources,
        required=list(required) if required is not None else None,
        member_of=list(member_of) if member_of is not None else None,
        limit=limit,
        start=_instant(start) if start is not None else None,
        end=_instant(end) if end is not None else None,
    )
    return Call("GET", "/v1/allocation-candidates", model(Candidates), params=params)


# -- paged listings: iterate every item, following next_cursor ---------------------------------------------
@dataclass(frozen=True)
class Pages(Generic[Item]):
    """A listing read page after page: ``page(cursor)`` is one page's call, decoded to (items, next)."""

    page: Callable[[str | None], Call[tuple[list[Item], str | None]]]


def iter_leases(
    *,
    status: Sequence[str] | None = None,
    project: str | None = None,
    start: Instant | None = None,
    end: Instant | None = None,
    page_size: int = 100,
) -> Pages[LeaseView]:
    """Every matching lease (see :func:`list_leases`), ``page_size`` per request."""

    def page(cursor: str | None) -> Call[tuple[list[LeaseView], str | None]]:
        call = list_leases(
            status=status, project=project, start=start, end=end, cursor=cursor, limit=page_size
        )

        def decode(response: httpx.Response) -> tuple[list[LeaseView], str | None]:
            got = call.decode(response)
            return got.items, got.next_cursor

        return Call(call.method, call.path, decode, params=call.params)

    return Pages(page)


class paged(Generic[P, Item]):  # noqa: N801 - used like endpoint
    """A client method made from a :class:`Pages` builder: an iterator on the sync client, an async
    iterator on the async one, each following ``next_cursor`` until the last page."""

    def __init__(self, build: Callable[P, Pages[Item]]) -> None:
        self.build = build
        self.__doc__ = build.__doc__
        self.__name__ = build.__name__

    @overload
    def __get__(self, obj: SyncRunner, owner: type[Any] | None = None) -> Callable[P, Iterator[Item]]: ...
    @overload
    def __get__(
        self, obj: AsyncRunner, owner: type[Any] | None = None
    ) -> Callable[P, AsyncIterator[Item]]: ...
    @overload
    def __get__(self, obj: None, owner: type[Any] | None = None) -> paged[P, Item]: ...
    def __get__(self, obj: object, owner: type[Any] | None = None) -> Any:
        if obj is None:
            return self
        build = self.build
        run: Callable[[Call[tuple[list[Item], str | None]]], Any] = obj._run  # type: ignore[attr-defined]

        if isinstance(obj, AsyncRunner):

            async def aiterate(*args: P.args, **kwargs: P.kwargs) -> AsyncIterator[Item]:
                pages = build(*args, **kwargs)
                cursor: str | None = None
                while True:
                    items, cursor = await run(pages.page(cursor))
                    for item in items:
                        yield item
                    if cursor is None:
                        return

            aiterate.__doc__ = build.__doc__
            return aiterate

        def iterate(*args: P.args, **kwargs: P.kwargs) -> Iterator[Item]:
            pages = build(*args, **kwargs)
            cursor: str | None = None
            while True:
                items, cursor = run(pages.page(cursor))
                yield from items
                if cursor is None:
                    return

        iterate.__doc__ = build.__doc__
        return iterate


# -- jobs (the planner, docs/planner.md) ------------------------------------------------------------------
def create_job(job: CreateJob | Raw) -> Call[JobOut]:
    """Create a job in a lease (``lease_id``) or as soon as possible (``offer_set``: offers are made and
    the first that holds becomes the job's lease). Idempotent by ``id``."""
    return Call("POST", "/v1/jobs", model(JobOut), json=body(job))


def list_jobs(
    *,
    state: Sequence[str] | None = None,
    project: str | None = None,
    lease: Id | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> Call[JobList]:
    """One page of jobs, newest first (keyset); pass ``next_cursor`` back as ``cursor``."""
    params = query(
        state=list(state) if state is not None else None,
        project=project,
        lease=lease,
        cursor=cursor,
        limit=limit,
    )
    return Call("GET", "/v1/jobs", model(JobList), params=params)


def get_job(job_id: str) -> Call[JobOut]:
    return Call("GET", path("/v1/jobs/{}", job_id), model(JobOut))


def cancel_job(job_id: str) -> Call[JobOut]:
    """Cancel a job (idempotent); the job as it is now (``cancel_requested`` until torn down)."""
    return Call("POST", path("/v1/jobs/{}/cancel", job_id), model(JobOut))


def job_logs(job_id: str, *, after: int | None = None, limit: int | None = None) -> Call[JobLogs]:
    """The job's log lines after id ``after`` (``next_after``: pass back for more)."""
    return Call(
        "GET", path("/v1/jobs/{}/logs", job_id), model(JobLogs), params=query(after=after, limit=limit)
    )


def iter_jobs(
    *,
    state: Sequence[str] | None = None,
    project: str | None = None,
    lease: Id | None = None,
    page_size: int = 100,
) -> Pages[JobOut]:
    """Every matching job (see :func:`list_jobs`), newest first, ``page_size`` per request."""

    def page(cursor: str | None) -> Call[tuple[list[JobOut], str | None]]:
        call = list_jobs(state=state, project=project, lease=lease, cursor=cursor, limit=page_size)

        def decode(response: httpx.Response) -> tuple[list[JobOut], str | None]:
            got = call.decode(response)
            return got.items, got.next_cursor

        return Call(call.method, call.path, decode, params=call.params)

    return Pages(page)


@dataclass(frozen=True)
class SseEvent:
    """One server-sent event: ``event`` (``state``, ``end``, ``timeout``), its ``id`` and JSON ``data``."""

    event: str
    data: dict[str, Any]
    id: str | None = None

    @property
    def transition(self) -> JobEvent | None:
        return JobEvent.model_validate(self.data) if self.event == "state" else None


class _SseParser:
    def __init__(self) -> None:
        self.event, self.id, self.data = "message", None, []  # type: tuple[str, str | None, list[str]]

    def feed(self, line: str) -> SseEvent | None:
        if not line:
            if not self.data:
                self.event = "message"
                return None
            out = SseEvent(self.event, json.loads("\n".join(self.data)), self.id)
            self.event, self.id, self.data = "message", None, []
            return out
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self.event = value
        elif name == "data":
            self.data.append(value)
        elif name == "id":
            self.id = value
        return None


def job_events_call(
    job_id: str, *, timeout: float | None = None, last_event_id: str | None = None
) -> Call[None]:
    """The request of :func:`job_events` (its answer is read as a stream, not decoded at once)."""
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    params = query(timeout=timeout)
    return Call(
        "GET", path("/v1/jobs/{}/events", job_id), no_content, params=params, retry=False, headers=headers
    )


class streamed:  # noqa: N801 - used like endpoint
    """``job_events``: an iterator of :class:`SseEvent` on the sync client, an async iterator on the async
    one, read as the server sends them; it ends when the server ends the stream (job terminal / timeout).
    Errors before the stream starts raise the typed problem (e.g. :class:`NotFoundError`)."""

    def __get__(self, obj: object, owner: type[Any] | None = None) -> Any:
        if obj is None:
            return self
        http: Any = obj._http  # type: ignore[attr-defined]
        request: Callable[[Call[Any]], dict[str, Any]] = obj._request  # type: ignore[attr-defined]

        if isinstance(obj, AsyncRunner):

            async def aiterate(
                job_id: str, *, timeout: float | None = None, last_event_id: str | None = None
            ) -> AsyncIterator[SseEvent]:
                call = job_events_call(job_id, timeout=timeout, last_event_id=last_event_id)
                async with http.stream(**request(call)) as response:
                    if not response.is_success:
                        await response.aread()
                        finish(call, response, 1)
                    parser = _SseParser()
                    async for line in response.aiter_lines():
                        event = parser.feed(line)
                        if event is not None:
                            yield event

            return aiterate

        def iterate(
            job_id: str, *, timeout: float | None = None, last_event_id: str | None = None
        ) -> Iterator[SseEvent]:
            call = job_events_call(job_id, timeout=timeout, last_event_id=last_event_id)
            with http.stream(**request(call)) as response:
                if not response.is_success:
                    response.read()
                    finish(call, response, 1)
                parser = _SseParser()
                for line in response.iter_lines():
                    event = parser.feed(line)
                    if event is not None:
                        yield event

        return iterate


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
