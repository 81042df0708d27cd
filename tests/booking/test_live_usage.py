"""One definition of live usage (``store.repositories.usage.live_consumer``): a hold past its expiry
counts nowhere, whether or not the reaper has run yet: not in the claim check, not in the peak the
inventory guard reads, not in quotas. Both databases."""

from __future__ import annotations

import time

from slotbroker.domain.claims import ClaimItem, ClaimRequest, ConsumerKind, ConsumerSpec
from slotbroker.domain.inventory import Inventory
from slotbroker.domain.providers import ProviderKind
from slotbroker.services.booking.claims import ClaimService
from slotbroker.services.booking.quotas import QuotaItem, QuotaService
from slotbroker.services.inventory.service import InventoryService
from slotbroker.store.db import Database
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire import providers as cmd
from slotbroker.wire.leases import SetQuota


def test_an_expired_hold_is_not_live_usage(db: Database) -> None:
    inv = InventoryService(db)
    site = inv.create_provider(cmd.CreateProvider(name="S", kind=ProviderKind.SITE))
    host = inv.create_provider(
        cmd.CreateProvider(
            name="h",
            kind=ProviderKind.HOST,
            parent_uuid=site.uuid,  # type: ignore[arg-type,unused-ignore]
            inventories={"VCPU": Inventory(total=8)},
        )
    )
    now = int(time.time())
    start, end = now + 3600, now + 7200
    spec = ConsumerSpec(ConsumerKind.HOLD, "p", start, end, expires_s=now + 60)
    ClaimService(db).claim(ClaimRequest(spec, (ClaimItem(host.uuid, "VCPU", 6),)), now_s=now)
    QuotaService(db).put("p", "VCPU", SetQuota(max_concurrent=8))
    with UnitOfWork(db, readonly=True) as uow:
        provider_id = uow.providers.get(host.uuid).id  # type: ignore[union-attr]
        assert uow.allocations.peak_usage(provider_id, "VCPU", now) == 6  # the hold is live
        assert uow.allocations.peak_usage(provider_id, "VCPU", now + 60) == 0  # expired, not yet reaped
        assert uow.quotas.live_spans("p", "VCPU", start, end, now) == [(start, end, 6)]
        assert uow.quotas.live_spans("p", "VCPU", start, end, now + 60) == []
    with UnitOfWork(db) as uow:  # the quota passes once the hold has expired, reaped or not
        QuotaService(db).check_in(uow, "p", [QuotaItem("VCPU", 8, "/items/0")], start, end, now + 60)
