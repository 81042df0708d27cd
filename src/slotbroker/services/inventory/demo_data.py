"""Loading the demo: the FABRIC-like topology and a few weeks of synthetic leases.

Bookings go in through one transaction that proves, before it commits, that no (provider, class) is over
capacity and no VLAN tag is held twice (the same audit the race tests use), so even demo data can never
overbook. Booking proper (claims with per-provider locking) is the booking service's job.
"""

from __future__ import annotations

import uuid

from slotbroker.demo.bookings import Booking
from slotbroker.domain.errors import CapacityConflict, NotFound
from slotbroker.store.db import Database
from slotbroker.store.unit_of_work import UnitOfWork


def lease_status(start_s: int, end_s: int, now_s: int) -> str:
    if now_s >= end_s:
        return "ENDED"
    return "ACTIVE" if now_s >= start_s else "PENDING"


def load_bookings(db: Database, bookings: list[Booking], *, now_s: int) -> int:
    """Insert ``bookings`` as leases; return how many. All or nothing."""
    with UnitOfWork(db) as uow:
        names = {a.provider_name for b in bookings for a in b.allocations}
        ids: dict[str, int] = {}
        for name in names:
            row = uow.providers.get_by_name(name)
            if row is None:
                raise NotFound(f"booking names unknown provider {name}")
            ids[name] = row.id
        leases = [
            {
                "uuid": str(uuid.uuid4()),
                "kind": "lease",
                "name": b.name,
                "project": b.project,
                "status": lease_status(b.start_s, b.end_s, now_s),
                "start_s": b.start_s,
                "end_s": b.end_s,
                "expires_s": None,
                "generation": 0,
            }
            for b in bookings
        ]
        allocations = [
            [
                {
                    "provider_id": ids[a.provider_name],
                    "resource_class": a.resource_class,
                    "amount": a.amount,
                    "start_s": b.start_s,
                    "end_s": b.end_s,
                    "vlan_tag": a.vlan_tag,
                }
                for a in b.allocations
            ]
            for b in bookings
        ]
        uow.allocations.insert_leases(leases, allocations)
        over = uow.allocations.overbooked()
        clashes = uow.allocations.vlan_clashes()
        if over or clashes:
            raise CapacityConflict(
                f"refusing to load: {len(over)} overbooked classes, {len(clashes)} VLAN clashes"
            )
        uow.calendar.bump()
        uow.commit()
    return len(bookings)


def lease_count(db: Database) -> int:
    with UnitOfWork(db, readonly=True) as uow:
        return uow.allocations.lease_count()
