"""``CachedIndex.without``: the cached index with one consumer's rows taken out equals, table by table,
an index read from the database without that consumer; the cached index itself is left as it was."""

from __future__ import annotations

import random

from test_calendar_cache_replay import assert_same, at, fresh_index

from slotbroker.bootstrap import build_services
from slotbroker.config import Settings
from slotbroker.domain.claims import ConsumerKind
from slotbroker.domain.inventory import Inventory
from slotbroker.domain.providers import ProviderKind
from slotbroker.engine.snapshot import AllocationSnap
from slotbroker.store.calendar_changes import Holding
from slotbroker.store.db import Database
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire import providers as cmd
from slotbroker.wire.leases import CreateLease, LeaseItemSpec

NOW = 1_900_000_000


def test_without_equals_a_read_without_the_consumer(db: Database) -> None:
    settings = Settings(
        database_url=db.url, migrate_on_start=False, event_loop_interval_s=0, planner_workers=0
    )
    svc = build_services(settings, db)
    site = svc.inventory.create_provider(cmd.CreateProvider(name="WS", kind=ProviderKind.SITE)).uuid
    hosts = [
        svc.inventory.create_provider(
            cmd.CreateProvider(
                name=f"w{i}",
                kind=ProviderKind.HOST,
                parent_uuid=site,
                inventories={"VCPU": Inventory(total=4)},
            )
        ).uuid
        for i in range(3)
    ]
    rng = random.Random(7)
    leases = []
    for n in range(12):
        start = NOW + rng.randint(0, 500)
        items = [
            LeaseItemSpec(provider_uuid=h, resource_class="VCPU", amount=rng.randint(1, 2))
            for h in rng.sample(hosts, rng.randint(1, 2))
        ]
        body = CreateLease(name=f"l{n}", start=at(start), end=at(start + rng.randint(10, 300)), items=items)
        try:
            leases.append(svc.leases.create(body, project="p", now_s=NOW))
        except Exception:
            continue
    target = leases[len(leases) // 2]
    cached = svc.calendar.current(NOW)
    before = fresh_index(db, NOW, cached.built_at_s)
    with UnitOfWork(db, readonly=True) as uow:
        row = uow.leases.find(target.id)
        rows = tuple(
            AllocationSnap(
                int(r.pid), str(r.resource_class), int(r.amount), int(row.start_s), int(row.end_s), None
            )
            for r in uow.leases.rows_from(int(row.id), 0)
        )
    gone = cached.without(Holding(int(row.id), str(row.status), ConsumerKind.LEASE.value, None, rows))
    svc.leases.cancel(target.id, project=None, now_s=NOW)
    assert_same(gone, fresh_index(db, NOW, cached.built_at_s))
    assert_same(cached.index, before)  # the cached index is untouched
    svc.find_slot.shutdown()
