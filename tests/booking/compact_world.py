"""The world the compaction tests build (services on a real database, a region of one-class sites) and
their ``w`` fixture, shared by test_lease_compact, test_lease_compact_pass_reads and test_lease_rebook;
a module imports ``world_fixture`` (the fixture ``w``) to use it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from slotbroker.bootstrap import Services, build_services
from slotbroker.config import Settings
from slotbroker.domain.inventory import Inventory
from slotbroker.domain.providers import ProviderKind
from slotbroker.store.db import Database
from slotbroker.wire import providers as cmd
from slotbroker.wire.leases import CompactLease, CreateLease, LeaseCompaction, LeaseItemSpec, LeaseView

NOW = 1_900_000_000
_names = itertools.count()


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class World:
    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.region = svc.inventory.create_provider(
            cmd.CreateProvider(name="creg", kind=ProviderKind.REGION)
        ).uuid

    def site(self, hosts: int, vcpu: int = 1, traits: tuple[tuple[str, ...], ...] = ()) -> list[str]:
        """A new site with ``hosts`` hosts (uuids, in name order); ``traits`` per host."""
        site = self.svc.inventory.create_provider(
            cmd.CreateProvider(name=f"CSITE{next(_names)}", kind=ProviderKind.SITE, parent_uuid=self.region)
        ).uuid
        out = []
        for i in range(hosts):
            body = cmd.CreateProvider(
                name=f"ch{next(_names):05d}",
                kind=ProviderKind.HOST,
                parent_uuid=site,
                traits=list(traits[i]) if i < len(traits) else [],
                inventories={"VCPU": Inventory(total=vcpu)},
            )
            out.append(self.svc.inventory.create_provider(body).uuid)
        return out

    def lease(
        self, host: str | list[str], start: int, end: int, amount: int = 1, project: str = "p"
    ) -> LeaseView:
        hosts = [host] if isinstance(host, str) else host
        items = [LeaseItemSpec(provider_uuid=h, resource_class="VCPU", amount=amount) for h in hosts]
        body = CreateLease(name=f"l{next(_names)}", start=at(start), end=at(end), items=items)
        return self.svc.leases.create(body, project=project, now_s=NOW)

    def compact(
        self, lease: LeaseView, swap: bool = True, now: int = NOW, project: str | None = "p"
    ) -> LeaseCompaction:
        body = CompactLease(generation=lease.generation, allow_host_swap=swap)
        return self.svc.compaction.compact(lease.id, body, project=project, now_s=now)


@pytest.fixture(name="w")
def world_fixture(db: Database) -> Iterator[World]:
    settings = Settings(
        database_url=db.url, migrate_on_start=False, event_loop_interval_s=0, planner_workers=0
    )
    svc = build_services(settings, db)
    yield World(svc)
    svc.find_slot.shutdown()
