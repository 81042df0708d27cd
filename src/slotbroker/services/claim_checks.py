"""The checks a claim makes on the rows it read under its locks, shared by every way of claiming.

Why a module of their own: the general path (``ClaimService.claim_in``, one unit of work) and the
PostgreSQL two-round-trip paths (``store/pg_claims.py``, from a worker thread or on the event loop) read
the same rows in different ways; the decision on them must be one piece of code, so that they can only
ever answer alike (``tests/test_pg_claims.py`` holds them to it).
"""

from __future__ import annotations

import uuid as uuidlib
from collections import defaultdict
from typing import Any

from slotbroker.domain.claims import ClaimRequest, ClaimResult
from slotbroker.domain.errors import CapacityConflict, FieldError, ValidationFailed, item_index
from slotbroker.domain.vlans import VlanSet
from slotbroker.store import claims as sql


def wanted_of(request: ClaimRequest, locked: dict[str, sql.LockedProvider]) -> dict[sql.Pair, int]:
    """The amount asked of each (provider id, class); ``ValidationFailed`` for providers that do not
    exist (``locked`` holds the ones that do)."""
    errors = [
        FieldError(f"/items/{i}/provider_uuid", f"no provider {it.provider_uuid}")
        for i, it in enumerate(request.items)
        if it.provider_uuid not in locked
    ]
    if errors:
        raise ValidationFailed("claim names unknown providers", errors)
    wanted: dict[sql.Pair, int] = defaultdict(int)
    for it in request.items:
        wanted[(locked[it.provider_uuid].id, it.resource_class)] += it.amount
    return wanted


def capacity_errors(
    request: ClaimRequest,
    locked: dict[str, sql.LockedProvider],
    state: dict[sql.Pair, sql.PairState],
    wanted: dict[sql.Pair, int],
) -> list[FieldError]:
    """Check the items against what the locked rows say: ``ValidationFailed`` for inventory rules
    (class missing on the provider, min/max unit and step, VLAN tag outside the port's ranges); the
    errors of (provider, class) pairs whose peak usage plus the request exceeds capacity."""
    s, e = request.consumer.start_s, request.consumer.end_s
    errors: list[FieldError] = []
    items_of: dict[sql.Pair, list[int]] = defaultdict(list)
    for i, it in enumerate(request.items):
        prov = locked[it.provider_uuid]
        items_of[(prov.id, it.resource_class)].append(i)
        st = state.get((prov.id, it.resource_class))
        if st is None:
            errors.append(
                FieldError(
                    f"/items/{i}/resource_class",
                    f"provider {prov.name} has no {it.resource_class} inventory",
                )
            )
            continue
        why = st.inventory.amount_problem(it.amount)
        if why:
            errors.append(FieldError(f"/items/{i}/amount", f"{prov.name} {it.resource_class}: {why}"))
        if it.vlan_tag is not None:
            if st.vlans is None:
                errors.append(FieldError(f"/items/{i}/provider_uuid", f"{prov.name} is not a facility port"))
            elif it.vlan_tag not in (vlans := VlanSet.parse(st.vlans)):
                errors.append(
                    FieldError(f"/items/{i}/vlan_tag", f"VLAN {it.vlan_tag} is not in {prov.name}'s {vlans}")
                )
    if errors:
        raise ValidationFailed("claim breaks inventory rules", errors)
    names = {p.id: p.name for p in locked.values()}
    for pair, amount in sorted(wanted.items()):
        peak, capacity = state[pair].usage.peak, state[pair].inventory.capacity
        if peak + amount > capacity:
            for i in items_of[pair]:
                errors.append(
                    FieldError(
                        f"/items/{i}",
                        f"{names[pair[0]]} {pair[1]}: peak usage {peak} in [{s}, {e}) + {amount} "
                        f"requested exceeds capacity {capacity}",
                    )
                )
    return errors


def writes(
    request: ClaimRequest, locked: dict[str, sql.LockedProvider]
) -> tuple[dict[str, Any], list[tuple[int, str, int, int | None]]]:
    """The consumer row's values and the allocation rows (provider id, class, amount, VLAN tag)."""
    spec = request.consumer
    values = {
        "uuid": spec.uuid or str(uuidlib.uuid4()),
        "kind": spec.kind.value,
        "name": spec.name,
        "project": spec.project,
        "status": spec.initial_status.value,
        "start_s": spec.start_s,
        "end_s": spec.end_s,
        "expires_s": spec.expires_s,
        "generation": 0,
    }
    rows = [(locked[it.provider_uuid].id, it.resource_class, it.amount, it.vlan_tag) for it in request.items]
    return values, rows


def result(request: ClaimRequest, values: dict[str, Any], consumer_id: int, attempts: int) -> ClaimResult:
    spec = request.consumer
    return ClaimResult(
        consumer_uuid=values["uuid"],
        consumer_id=consumer_id,
        kind=spec.kind,
        status=values["status"],
        start_s=spec.start_s,
        end_s=spec.end_s,
        expires_s=spec.expires_s,
        allocations=len(request.items),
        attempts=attempts,
    )


def item_order(err: FieldError) -> tuple[int, str]:
    index = item_index(err.pointer)
    return -1 if index is None else index, err.pointer


def plan_write(
    request: ClaimRequest, locked: dict[str, sql.LockedProvider], state: dict[sql.Pair, sql.PairState]
) -> tuple[dict[str, Any], list[tuple[int, str, int, int | None]], int] | None:
    """For the two-round-trip paths: raise what the general path would raise on these rows, else the
    consumer's values, the allocation rows and the calendar shard key to write; None when expired
    holds are in the way (the general path reaps them in its own transaction)."""
    wanted = wanted_of(request, locked)
    errors = capacity_errors(request, locked, state, wanted)
    if errors:
        raise CapacityConflict("claim does not fit", sorted(errors, key=item_order))
    if any(st.usage.expired_holds for st in state.values()):
        return None
    values, rows = writes(request, locked)
    return values, rows, min(p.id for p in locked.values())
