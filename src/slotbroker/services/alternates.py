"""Moving a booking onto stand-in hosts, written once: which providers a claim's errors point at,
swapping a host for another in a claim's items, and claiming for an existing lease under a temporary
consumer whose rows then move onto the lease.

The stand-in candidates themselves come from the store (``uow.leases.alternate_hosts``: same site,
same traits, every class); whether one has room is for the claim to prove, under its locks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from slotbroker.domain.claims import ClaimItem, ClaimRequest, ConsumerSpec
from slotbroker.domain.errors import CapacityConflict, ValidationFailed, item_index
from slotbroker.services.claims import ClaimService
from slotbroker.store.repositories.leases import HostRef
from slotbroker.store.unit_of_work import UnitOfWork


def offending_providers(items: Sequence[ClaimItem], exc: CapacityConflict | ValidationFailed) -> list[str]:
    """The providers (uuids, first named first) of the items a claim's errors point at (``/items/3...``)."""
    bad: list[str] = []
    for err in exc.errors:
        k = item_index(err.pointer)
        if k is not None and k < len(items):
            uuid = items[k].provider_uuid
            if uuid not in bad:
                bad.append(uuid)
    return bad


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


__all__ = ["HostRef", "claim_for_lease", "offending_providers", "repoint_placement", "swap_host"]
