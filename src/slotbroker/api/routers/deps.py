"""Shared dependencies: the service container on app.state."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from slotbroker.services.catalog import CatalogService
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

    @classmethod
    def build(cls, db: Database) -> Services:
        return cls(
            db=db,
            inventory=InventoryService(db),
            catalog=CatalogService(db),
            network=NetworkService(db),
            topology=TopologyService(db),
            tokens=TokenService(db),
        )


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc
