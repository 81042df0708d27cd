"""Moving a booking onto stand-in hosts, written once: what a conflicting claim lets us swap, which
stand-in comes next, swapping a host in a claim's items, and claiming for an existing lease under a
temporary consumer whose rows then move onto the lease.

The swap rule every booking path follows (offers, allocation requests, lease updates):

* only a host can be swapped: when any conflict points at a shared item (a link, a facility port),
  another host of the same site cannot fix it, so the attempt ends there;
* the first conflicting host is swapped, for the first stand-in that was neither tried nor is already
  in use by the booking; a host that conflicted is never tried again.

Where the stand-ins come from differs by path and is not part of the rule: a find-slot window carries
its own (the engine's alternates per component), a lease asks the store (``uow.leases.alternate_hosts``:
same site, same traits, every class). Whether one has room is for the claim to prove, under its locks.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from typing import TypeVar

from slotbroker.domain.claims import ClaimItem, ClaimRequest, ConsumerKind, ConsumerSpec
from slotbroker.domain.errors import CapacityConflict, FieldError, ValidationFailed, item_index
from slotbroker.domain.providers import ProviderKind
from slotbroker.services.booking.claims import ClaimService
from slotbroker.store.repositories.leases import HostRef
from slotbroker.store.unit_of_work import UnitOfWork

MAX_SWAPS = 32  # stand-in hosts tried when moving a lease, in all
K = TypeVar("K")
H = TypeVar("H", bound=Hashable)


def conflicting_owner(errors: Sequence[FieldError], owners: Sequence[K | None]) -> K | None:
    """The owner (a host-bound instance) of the first item the claim's errors point at, or None when
    there is nothing to swap: some error points at an item no host owns (a link, a port) or at none."""
    first: K | None = None
    for err in errors:
        k = item_index(err.pointer)
        owner = owners[k] if k is not None and k < len(owners) else None
        if owner is None:
            return None
        if first is None:
            first = owner
    return first


def next_alternate(candidates: Iterable[H], tried: set[H], in_use: Collection[H]) -> H | None:
    """The first stand-in neither tried nor in use, now marked tried; None when none is left."""
    for alt in candidates:
        if alt in tried or alt in in_use:
            continue
        tried.add(alt)
        return alt
    return None


def swap_host(items: Sequence[ClaimItem], old: str, new: str) -> tuple[ClaimItem, ...]:
    """``items`` with every item on provider ``old`` moved to ``new``."""
    return tuple(
        ClaimItem(new, it.resource_class, it.amount, it.vlan_tag) if it.provider_uuid == old else it
        for it in items
    )


def claim_for_lease(
    claims: ClaimService,
    uow: UnitOfWork,
    lease_id: int,
    spec: ConsumerSpec,
    items: Sequence[ClaimItem],
    now_s: int,
    *,
    stretch: tuple[int, int] | None = None,
) -> None:
    """Claim ``items`` for the existing lease ``lease_id``: ``claim_in`` under a temporary consumer
    (``spec``; all of the claim's checks, locks and inserts), whose rows then move onto the lease
    (``stretch`` (start, end): the lease's rows ending at ``start`` are stretched to ``end`` instead).
    Raises what ``claim_in`` raises, having written nothing."""
    result = claims.claim_in(uow, ClaimRequest(spec, tuple(items)), now_s=now_s)
    uow.leases.adopt(lease_id, result.consumer_id, stretch=stretch)


def claim_for_lease_swapping(
    claims: ClaimService,
    uow: UnitOfWork,
    consumer_id: int,
    project: str,
    items: tuple[ClaimItem, ...],
    span: tuple[int, int],
    now: int,
    *,
    swap: bool,
    merge: bool = False,
) -> None:
    """Claim ``items`` over ``span`` (start, end) for the existing lease ``consumer_id``
    (``claim_for_lease``; ``merge``: its rows ending at start are stretched to end instead). With
    ``swap``, a conflicting host is swapped for a stand-in of the same site, traits and classes (the
    swap rule above), at most ``MAX_SWAPS`` times; the first refusal is what is raised when none fits."""
    start, end = span
    tried: set[str] = {it.provider_uuid for it in items}
    hosts: set[str] | None = None  # which providers are hosts: read at the first conflict only
    current = items
    first: CapacityConflict | None = None
    stretch = (start, end) if merge else None
    for _ in range(MAX_SWAPS + 1):
        spec = ConsumerSpec(ConsumerKind.LEASE, project, start, end, name=f"lease {consumer_id} update")
        try:
            claim_for_lease(claims, uow, consumer_id, spec, current, now, stretch=stretch)
            moves = {a.provider_uuid: b.provider_uuid for a, b in zip(items, current, strict=True)}
            repoint_placement(uow, consumer_id, moves)
            return
        except (CapacityConflict, ValidationFailed) as exc:
            if first is None:
                if isinstance(exc, ValidationFailed) or not swap:
                    raise
                first = exc
            # Swapping: a candidate that breaks unit rules simply does not fit either.
            if hosts is None:
                hosts = _hosts_among(uow, {it.provider_uuid for it in items})
            swapped = _swap_for_stand_in(uow, current, exc, tried, hosts)
            if swapped is None:
                raise first from None
            current = swapped
    assert first is not None
    raise first


def _hosts_among(uow: UnitOfWork, uuids: Collection[str]) -> set[str]:
    """The providers of ``uuids`` that are hosts (the only ones a stand-in can replace)."""
    rows = ((u, uow.providers.get(u)) for u in uuids)
    return {u for u, row in rows if row is not None and row.kind == ProviderKind.HOST.value}


def _swap_for_stand_in(
    uow: UnitOfWork,
    items: tuple[ClaimItem, ...],
    exc: CapacityConflict | ValidationFailed,
    tried: set[str],
    hosts: set[str],
) -> tuple[ClaimItem, ...] | None:
    """Replace the first conflicting host (``conflicting_owner``) with an untried host of the same
    site, traits and resource classes; None when any conflict points at a provider that is not a host
    (a link, a facility port: no stand-in fixes that) or no stand-in is left. ``hosts``: the host
    uuids among the items (a stand-in taken is added)."""
    bad = conflicting_owner(
        exc.errors, [it.provider_uuid if it.provider_uuid in hosts else None for it in items]
    )
    if bad is None:
        return None
    classes = {it.resource_class for it in items if it.provider_uuid == bad}
    stand_ins = (alt.uuid for alt in uow.leases.alternate_hosts(bad, classes, tried))
    alt = next_alternate(stand_ins, tried, {it.provider_uuid for it in items})
    if alt is None:
        return None
    hosts.add(alt)
    return swap_host(items, bad, alt)


def repoint_placement(uow: UnitOfWork, lease_id: int, moves: Mapping[str, str]) -> None:
    """After hosts were swapped (old uuid -> new uuid), the lease's component placement names the new
    hosts, so a view still says which host is which instance."""
    stored = uow.leases.placement_of(lease_id)
    moved = {old: new for old, new in moves.items() if old != new}
    if not stored or not moved:
        return
    names = uow.leases.host_names(set(moved) | set(moved.values()))
    renamed = {names[o]: names[n] for o, n in moved.items() if o in names and n in names}
    placement: dict[str, list[str]] = json.loads(stored)
    fixed = {c: [renamed.get(h, h) for h in hosts] for c, hosts in placement.items()}
    uow.leases.set_placement(lease_id, json.dumps(fixed))


__all__ = [
    "MAX_SWAPS",
    "HostRef",
    "claim_for_lease",
    "claim_for_lease_swapping",
    "conflicting_owner",
    "next_alternate",
    "repoint_placement",
    "swap_host",
]
