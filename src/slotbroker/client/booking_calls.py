"""The offer, lease, quota, calendar-feed, claim and allocation-candidate endpoints, each described
once as a :class:`~slotbroker.client._spec.Call` builder (:mod:`slotbroker.client.endpoints` makes them
methods)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from slotbroker.client._spec import (
    Call,
    Id,
    Instant,
    Raw,
    body,
    iso,
    list_of,
    model,
    no_content,
    path,
    query,
    text,
)
from slotbroker.client.paging import Pages
from slotbroker.wire.calendar_feeds import CreatedFeed, CreateFeed, FeedView
from slotbroker.wire.claims import Candidates, ClaimView
from slotbroker.wire.leases import (
    CompactionReport,
    CreateLease,
    LeaseCompaction,
    LeaseItemSpec,
    LeaseList,
    LeaseView,
    QuotaView,
    SetQuota,
    UpdateLease,
)
from slotbroker.wire.offers import AcceptedLease, OfferSetRequest, OfferSetView, OfferView


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
    name: str | None = None,
    site: str | None = None,
) -> Call[LeaseList]:
    """One page of leases in creation order (keyset); pass ``next_cursor`` back as ``cursor``.

    ``start``/``end``: only leases overlapping that interval; ``project``: admins only; ``name``: whose
    name or id starts with it (any case); ``site``: holding a host or facility port of that site, or a
    link ending there."""
    params = query(
        status=list(status) if status is not None else None,
        project=project,
        start=iso(start) if start is not None else None,
        end=iso(end) if end is not None else None,
        cursor=cursor,
        limit=limit,
        name=name,
        site=site,
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


def compact_lease(
    lease_id: Id, *, generation: int, allow_host_swap: bool = True, policy: str = "earliest"
) -> Call[LeaseCompaction]:
    """Move a PENDING lease to its earliest possible start, as if it were gone from the calendar (never
    later; ``moved`` false and a ``reason`` when nothing earlier fits). ``allow_host_swap``: other hosts
    of the same site with the same traits may take it.

    Raises :class:`ConcurrentUpdateError` (stale generation), :class:`InvalidStateError` (not PENDING)
    or a conflict with code ``not_compactable`` (it holds a link, a facility port or a VLAN tag)."""
    change = {"generation": generation, "allow_host_swap": allow_host_swap, "policy": policy}
    return Call("POST", path("/v1/leases/{}/compact", lease_id), model(LeaseCompaction), json=change)


def compact_leases(
    leases: Sequence[str] | None = None,
    *,
    allow_host_swap: bool = True,
    policy: str = "earliest",
    limit: int | None = None,
) -> Call[CompactionReport]:
    """Compact several PENDING leases one after another (each its own transaction): ``leases`` (ids,
    prefixes or names) in that order, or your project's PENDING leases earliest start first (at most
    ``limit``). Each outcome says whether it moved, from when to when, or why not."""
    request: dict[str, Any] = {"allow_host_swap": allow_host_swap, "policy": policy}
    if leases is not None:
        request["leases"] = list(leases)
    if limit is not None:
        request["limit"] = limit
    return Call("POST", "/v1/leases/compact", model(CompactionReport), json=request)


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
            "expires": iso(expires) if expires is not None else None,
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
        doc["start"] = iso(start)
    if end is not None:
        doc["end"] = iso(end)
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
        start=iso(start) if start is not None else None,
        end=iso(end) if end is not None else None,
    )
    return Call("GET", "/v1/allocation-candidates", model(Candidates), params=params)


# -- every lease, page after page ---------------------------------------------------------------------


def iter_leases(
    *,
    status: Sequence[str] | None = None,
    project: str | None = None,
    start: Instant | None = None,
    end: Instant | None = None,
    page_size: int = 100,
    name: str | None = None,
    site: str | None = None,
) -> Pages[LeaseView]:
    """Every matching lease (see :func:`list_leases`), ``page_size`` per request."""

    def page(cursor: str | None) -> Call[tuple[list[LeaseView], str | None]]:
        call = list_leases(
            status=status,
            project=project,
            start=start,
            end=end,
            cursor=cursor,
            limit=page_size,
            name=name,
            site=site,
        )

        def decode(response: httpx.Response) -> tuple[list[LeaseView], str | None]:
            got = call.decode(response)
            return got.items, got.next_cursor

        return Call(call.method, call.path, decode, params=call.params)

    return Pages(page)
