"""Shared dependencies: the service container on app.state."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from slotbroker.services.calendar_cache import CalendarCache
from slotbroker.services.catalog import CatalogService
from slotbroker.services.claims import ClaimService
from slotbroker.services.find_slot import FindSlotService, FindSlotSettings
from slotbroker.services.inventory import InventoryService
from slotbroker.services.network import NetworkService
from slotbroker.services.tokens import TokenService
from slotbroker.services.topology import TopologyService
from slotbroker.store.db import Database


@dataclass
class Services:
    db: Database
    inventory: InventoryService
    catalog: CatalogService
    network: NetworkService
    topology: TopologyService
    tokens: TokenService
    calendar: CalendarCache
    find_slot: FindSlotService
    claims: ClaimService

    @classmethod
    def build(cls, db: Database, find_slot: FindSlotSettings | None = None) -> Services:
        calendar = CalendarCache(db)
        return cls(
            db=db,
            inventory=InventoryService(db),
            catalog=CatalogService(db),
            network=NetworkService(db),
            topology=TopologyService(db),
            tokens=TokenService(db),
            calendar=calendar,
            find_slot=FindSlotService(db, calendar, find_slot),
            claims=ClaimService(db),
        )


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc
