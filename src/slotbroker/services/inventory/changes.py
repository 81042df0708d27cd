"""Inventory steps that run inside a caller's unit of work.

The HTTP use cases and the topology import share them, so an inventory change obeys exactly the same
rules whichever door it came through: class names checked, device classes registered on first use,
capacity never shrunk below the peak of committed future usage, generations bumped once per change.
"""

from __future__ import annotations

import time
import uuid as uuidlib

from slotbroker.domain.errors import FieldError, InUse, ValidationFailed
from slotbroker.domain.inventory import Inventory, capacity_of
from slotbroker.domain.providers import Location, ProviderKind, parent_problem
from slotbroker.domain.resource_classes import ClassKind, device_description, kind_of, naming_problem
from slotbroker.domain.traits import trait_problem
from slotbroker.store.claims import lock_provider_ids
from slotbroker.store.models import InventoryRow, ProviderAggregateRow, ProviderRow, ProviderTraitRow
from slotbroker.store.unit_of_work import UnitOfWork


def now_s() -> int:
    return int(time.time())


def check_classes(uow: UnitOfWork, names: list[str], at: str) -> None:
    """Every class must follow the naming rule; custom ones must be registered. Devices self-register."""
    problems: list[FieldError] = []
    custom = uow.catalog.custom_class_names()
    for name in names:
        where = f"{at}/{name.replace('~', '~0').replace('/', '~1')}"
        why = naming_problem(name)
        if why is None and kind_of(name) == ClassKind.CUSTOM and name not in custom:
            why = f"custom resource class {name!r} is not registered (POST /v1/resource-classes)"
        if why:
            problems.append(FieldError(where, why))
    if problems:
        raise ValidationFailed("unknown or invalid resource class", problems)
    for name in names:
        if kind_of(name) == ClassKind.DEVICE and uow.catalog.resource_class(name) is None:
            uow.catalog.add_resource_class(name, ClassKind.DEVICE.value, device_description(name))


def check_traits(uow: UnitOfWork, names: list[str], at: str) -> None:
    custom = uow.catalog.custom_trait_names()
    problems = [
        FieldError(f"{at}/{i}", why)
        for i, n in enumerate(names)
        if (why := trait_problem(n, custom)) is not None
    ]
    if problems:
        raise ValidationFailed("unknown or invalid trait", problems)


def new_provider(
    uow: UnitOfWork,
    *,
    name: str,
    kind: ProviderKind,
    parent: ProviderRow | None,
    uuid: str | None = None,
    location: Location | None = None,
    at: str = "",
) -> ProviderRow:
    why = parent_problem(kind, ProviderKind(parent.kind) if parent else None)
    if why:
        raise ValidationFailed(why, [FieldError(at + ("/parent_uuid" if at == "" else "/kind"), why)])
    row = ProviderRow(
        uuid=uuid or str(uuidlib.uuid4()),
        name=name,
        kind=kind.value,
        parent_id=parent.id if parent else None,
        lat=location.lat if location else None,
        lon=location.lon if location else None,
        generation=0,
    )
    return uow.providers.add(row)


def inventory_of(row: InventoryRow) -> Inventory:
    return Inventory(
        total=row.total,
        reserved=row.reserved,
        min_unit=row.min_unit,
        max_unit=row.max_unit,
        step_size=row.step_size,
        allocation_ratio=row.allocation_ratio,
    )


def apply_inventories(uow: UnitOfWork, row: ProviderRow, desired: dict[str, Inventory], at: str) -> bool:
    """Make ``row``'s inventories equal ``desired``; return whether anything changed.

    A class may lose capacity only down to the peak of its committed usage from now on, and may be
    removed only when nothing is booked on it from now on: otherwise bookings would be overbooked.
    """
    check_classes(uow, list(desired), at)
    # Take the claims' lock on this provider before reading its usage: a claim committing between our
    # read and our write could otherwise be overbooked by a shrink.
    lock_provider_ids(uow.session, [row.id])
    current = {i.resource_class: i for i in row.inventories}
    changed = False
    t = now_s()
    problems: list[FieldError] = []
    for name, inv_row in list(current.items()):
        if name not in desired:
            if uow.allocations.peak_usage(row.id, name, t) > 0:
                problems.append(
                    FieldError(f"{at}/{name}", f"{name} is booked on {row.name}; cannot remove it")
                )
                continue
            row.inventories.remove(inv_row)
            changed = True
    for name, inv in desired.items():
        existing = current.get(name)
        if existing is not None and inventory_of(existing) == inv:
            continue
        new_capacity = capacity_of(inv.total, inv.reserved, inv.allocation_ratio)
        if existing is not None and new_capacity < capacity_of(
            existing.total, existing.reserved, existing.allocation_ratio
        ):
            peak = uow.allocations.peak_usage(row.id, name, t)
            if peak > new_capacity:
                problems.append(
                    FieldError(f"{at}/{name}", f"capacity {new_capacity} is below the {peak} already booked")
                )
                continue
        if existing is None:
            existing = InventoryRow(resource_class=name)
            row.inventories.append(existing)
        assert inv.max_unit is not None
        existing.total, existing.reserved = inv.total, inv.reserved
        existing.min_unit, existing.max_unit = inv.min_unit, inv.max_unit
        existing.step_size, existing.allocation_ratio = inv.step_size, inv.allocation_ratio
        changed = True
    if problems:
        raise InUse("inventory change would overbook committed allocations", problems)
    return changed


def apply_traits(uow: UnitOfWork, row: ProviderRow, names: list[str], at: str) -> bool:
    check_traits(uow, names, at)
    wanted = sorted(set(names))
    if [t.trait for t in row.traits] == wanted:
        return False
    row.traits.clear()
    uow.session.flush()
    row.traits.extend(ProviderTraitRow(trait=n) for n in wanted)
    return True


def apply_aggregates(uow: UnitOfWork, row: ProviderRow, names: list[str]) -> bool:
    wanted = sorted(set(names))
    if [a.aggregate for a in row.aggregates] == wanted:
        return False
    row.aggregates.clear()
    uow.session.flush()
    row.aggregates.extend(ProviderAggregateRow(aggregate=n) for n in wanted)
    return True


def apply_location(row: ProviderRow, location: Location | None) -> bool:
    lat, lon = (location.lat, location.lon) if location else (None, None)
    if (row.lat, row.lon) == (lat, lon):
        return False
    row.lat, row.lon = lat, lon
    return True


def apply_attributes(row: ProviderRow, attributes: dict[str, str] | None) -> bool:
    """Set the provider's attributes (None or empty: none); return whether anything changed."""
    wanted = dict(sorted(attributes.items())) if attributes else None
    if (row.attributes or None) == wanted:
        return False
    row.attributes = wanted
    return True


def ensure_deletable(uow: UnitOfWork, row: ProviderRow) -> None:
    if uow.providers.has_children(row.id):
        raise InUse(f"provider {row.name} has children; delete them first")
    if uow.allocations.in_use(row.id):
        raise InUse(f"provider {row.name} has allocations; they must end and be purged first")
    if row.kind == ProviderKind.SITE and uow.network.links_touching(row.id):
        raise InUse(f"site {row.name} is an endpoint of links; delete them first")
