"""The claim decision: given the rows a claim read under its provider locks, write, reap first, or refuse.

Plain data and one pure function, no database. Every way of claiming (the general path in one unit of
work, the PostgreSQL two-round-trip path from a thread or the event loop) reads the same facts and hands
them to ``decide``, so they can only ever answer alike (``tests/booking/test_pg_claims.py`` holds them to it).

The facts are what the locked rows say: the providers that exist (``LockedProvider``), and for each
touched (provider id, class) its inventory, its facility port's VLAN ranges and the peak *live* usage
over the claim's interval (``PairState``). Live means: the consumer is in no freeing status and is not a
hold whose expiry has passed. Expired holds count for nothing, but while they still have rows in the way
the claim reaps them first, so that the allocations table itself never shows an overbooking.
"""

from __future__ import annotations

import uuid as uuidlib
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from slotbroker.domain.claims import ClaimRequest, ClaimResult
from slotbroker.domain.errors import CapacityConflict, FieldError, ValidationFailed, item_index
from slotbroker.domain.inventory import capacity_of, unit_problem
from slotbroker.domain.vlans import VlanSet

Pair = tuple[int, str]  # (provider id, resource class)
AllocationItem = tuple[int, str, int, int | None]  # (provider id, class, amount, VLAN tag)


@dataclass(frozen=True)
class LockedProvider:
    id: int
    uuid: str
    name: str
    kind: str


@dataclass(frozen=True)
class InventoryFacts:
    total: int
    reserved: int
    min_unit: int
    max_unit: int
    step_size: int
    allocation_ratio: float

    @property
    def capacity(self) -> int:
        return capacity_of(self.total, self.reserved, self.allocation_ratio)

    def amount_problem(self, amount: int) -> str | None:
        return unit_problem(amount, self.min_unit, self.max_unit, self.step_size)


@dataclass(frozen=True)
class Usage:
    """Peak live usage of one (provider, class) over the claim's interval, and whether expired holds
    still have rows there."""

    peak: int
    expired_holds: bool


@dataclass(frozen=True)
class PairState:
    """What a claim needs to know about one touched (provider, class): its inventory, the port's VLAN
    ranges (facility ports only), and the peak live usage over the claim's interval."""

    inventory: InventoryFacts
    vlans: str | None
    usage: Usage


@dataclass(frozen=True)
class Write:
    """The claim fits: insert ``consumer`` (the consumer row's values) and one allocation per item of
    ``rows`` over the consumer's interval, then bump the calendar shard of ``shard_key`` (the lowest
    locked provider id, so claims on different providers bump different rows)."""

    consumer: dict[str, Any]
    rows: list[AllocationItem]
    shard_key: int

    def result(self, request: ClaimRequest, consumer_id: int, attempts: int) -> ClaimResult:
        spec = request.consumer
        return ClaimResult(
            consumer_uuid=self.consumer["uuid"],
            consumer_id=consumer_id,
            kind=spec.kind,
            status=self.consumer["status"],
            start_s=spec.start_s,
            end_s=spec.end_s,
            expires_s=spec.expires_s,
            allocations=len(request.items),
            attempts=attempts,
        )


@dataclass(frozen=True)
class ReapFirst:
    """The claim fits once the expired holds on ``pairs`` are reaped (in the same transaction); then
    ``then``."""

    pairs: list[Pair]
    then: Write


def wanted_of(request: ClaimRequest, locked: dict[str, LockedProvider]) -> dict[Pair, int]:
    """The amount asked of each (provider id, class); ``ValidationFailed`` for providers that do not
    exist (``locked`` holds the ones that do)."""
    errors = [
        FieldError(f"/items/{i}/provider_uuid", f"no provider {it.provider_uuid}")
        for i, it in enumerate(request.items)
        if it.provider_uuid not in locked
    ]
    if errors:
        raise ValidationFailed("claim names unknown providers", errors)
    wanted: dict[Pair, int] = defaultdict(int)
    for it in request.items:
        wanted[(locked[it.provider_uuid].id, it.resource_class)] += it.amount
    return wanted


def vlan_tags(request: ClaimRequest, locked: dict[str, LockedProvider]) -> list[tuple[int, int]]:
    """The (port provider id, VLAN tag) pairs the claim asks for: the ones whose holders must be read."""
    return [(locked[it.provider_uuid].id, it.vlan_tag) for it in request.items if it.vlan_tag is not None]


def decide(
    request: ClaimRequest,
    locked: dict[str, LockedProvider],
    state: dict[Pair, PairState],
    taken_vlans: Collection[tuple[int, int]] = (),
) -> Write | ReapFirst:
    """The claim's answer on the facts read under its locks.

    Raises ``ValidationFailed`` for what no amount of waiting fixes (unknown provider, class missing on
    the provider, min/max unit and step, VLAN tag outside the port's ranges), and ``CapacityConflict``
    with one error per offending item, in item order, when the claim does not fit: a (provider, class)
    whose peak usage plus the amount asked exceeds capacity, or a VLAN tag in ``taken_vlans`` (the
    (port id, tag) pairs a live allocation holds at an overlapping time). Otherwise ``Write``, or
    ``ReapFirst`` when expired holds still have rows in the way.
    """
    wanted = wanted_of(request, locked)
    errors = _rule_errors(request, locked, state)
    if errors:
        raise ValidationFailed("claim breaks inventory rules", errors)
    errors = _capacity_errors(request, locked, state, wanted) + _vlan_errors(request, locked, taken_vlans)
    if errors:
        raise CapacityConflict("claim does not fit", sorted(errors, key=item_order))
    write = _write(request, locked)
    dead = sorted(pair for pair, st in state.items() if st.usage.expired_holds)
    return ReapFirst(dead, write) if dead else write


def item_order(err: FieldError) -> tuple[int, str]:
    """Sort key of a claim's errors: by item index (errors outside ``/items`` first), then pointer."""
    index = item_index(err.pointer)
    return -1 if index is None else index, err.pointer


def _rule_errors(
    request: ClaimRequest, locked: dict[str, LockedProvider], state: dict[Pair, PairState]
) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, it in enumerate(request.items):
        prov = locked[it.provider_uuid]
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
    return errors


def _capacity_errors(
    request: ClaimRequest,
    locked: dict[str, LockedProvider],
    state: dict[Pair, PairState],
    wanted: dict[Pair, int],
) -> list[FieldError]:
    s, e = request.consumer.start_s, request.consumer.end_s
    items_of: dict[Pair, list[int]] = defaultdict(list)
    for i, it in enumerate(request.items):
        items_of[(locked[it.provider_uuid].id, it.resource_class)].append(i)
    names = {p.id: p.name for p in locked.values()}
    errors: list[FieldError] = []
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


def _vlan_errors(
    request: ClaimRequest, locked: dict[str, LockedProvider], taken: Collection[tuple[int, int]]
) -> list[FieldError]:
    if not taken:
        return []
    s, e = request.consumer.start_s, request.consumer.end_s
    errors: list[FieldError] = []
    for i, it in enumerate(request.items):
        prov = locked[it.provider_uuid]
        if it.vlan_tag is not None and (prov.id, it.vlan_tag) in taken:
            errors.append(
                FieldError(
                    f"/items/{i}/vlan_tag", f"VLAN {it.vlan_tag} on {prov.name} is taken in [{s}, {e})"
                )
            )
    return errors


def _write(request: ClaimRequest, locked: dict[str, LockedProvider]) -> Write:
    spec = request.consumer
    consumer = {
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
    return Write(consumer, rows, min(p.id for p in locked.values()))
