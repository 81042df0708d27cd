"""Lease-scoped provisions are released by a small pool after the commit that ends each lease.

A mass cancel must not start one thread (and one scheduler tool call) per lease at once: the calls
queue behind ``RELEASE_THREADS`` workers, every lease is still released exactly once, and
``wait_released`` waits for all of them."""

from __future__ import annotations

import asyncio
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar

from planner_support import NOW_S, fast_settings, make_planner, make_site
from slotbroker.services.booking.claims import ClaimService
from slotbroker.services.booking.leases import LeaseService
from slotbroker.services.booking.quotas import QuotaService
from slotbroker.services.planner.provisioners.simulated import SimulatedProvisioner
from slotbroker.services.planner.service import RELEASE_THREADS
from slotbroker.store.db import Database
from slotbroker.wire.leases import CreateLease, LeaseItemSpec


@dataclass
class Scoped(SimulatedProvisioner):
    """Counts how many ``release_lease`` calls run at once, and which leases they freed."""

    lease_scoped: ClassVar[bool] = True
    released: list[str] = field(default_factory=list)
    running: int = 0
    most: int = 0
    threads: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def release_lease(self, lease_id: str) -> None:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.threads.add(threading.current_thread().name)
        await asyncio.sleep(0.05)
        with self.lock:
            self.running -= 1
            self.released.append(lease_id)


def at(s: int) -> datetime:
    return datetime.fromtimestamp(s, UTC)


def test_a_mass_cancel_queues_its_releases_on_a_bounded_pool(db: Database) -> None:
    leases = LeaseService(db, ClaimService(db), QuotaService(db))
    host = make_site(db, hosts=("host-a",), vcpu=16)["host-a"]
    scoped = Scoped()
    planner = make_planner(db, {"scoped": scoped}, fast_settings())
    planner.register(leases)
    item = LeaseItemSpec(provider_uuid=uuid.UUID(host), resource_class="VCPU", amount=1)
    ids = [
        str(
            leases.create(
                CreateLease(start=at(NOW_S + 600), end=at(NOW_S + 4200), items=[item]), project="alpha"
            ).id
        )
        for _ in range(8)
    ]
    for lease_id in ids:
        leases.cancel(lease_id, project="alpha")
    planner.wait_released()
    try:
        assert sorted(scoped.released) == sorted(ids)  # each once, all done when wait_released returns
        assert 1 <= scoped.most <= RELEASE_THREADS
        assert len(scoped.threads) <= RELEASE_THREADS
        assert all(name.startswith("lease-release") for name in scoped.threads)
    finally:
        planner.close()
    planner.close()  # idempotent
