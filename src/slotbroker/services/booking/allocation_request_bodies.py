"""What an allocation request stores (``ARBody``: per-instance hosts and amounts, the fixed items, the
stand-ins per component), what claiming one answers (``ClaimOutcome`` with the swaps made), its errors
with their stable codes, and the provider uuid cache the bodies are written with."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from slotbroker.domain.claims import ClaimResult
from slotbroker.domain.errors import SlotbrokerError
from slotbroker.store.db import Database
from slotbroker.store.unit_of_work import UnitOfWork


# -- errors with their own HTTP status (the router maps them; stable codes) ---------------------------------
@dataclass
class AllocationRequestError(SlotbrokerError):
    status: int = 400


@dataclass
class AllocationRequestNotFound(AllocationRequestError):
    code: str = "allocation_request_not_found"
    status: int = 404


@dataclass
class AllocationRequestExpired(AllocationRequestError):
    code: str = "allocation_request_expired"
    status: int = 410


@dataclass
class AllocationRequestClaimed(AllocationRequestError):
    code: str = "allocation_request_claimed"
    status: int = 409


# -- bodies -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Instance:
    component: str
    index: int
    host_uuid: str
    host_name: str
    resources: dict[str, int]  # on the window's host: elastic classes at the granted amount
    minimum: dict[str, int] = field(default_factory=dict)  # on an alternate; empty: ``resources``

    def amounts(self, host_uuid: str) -> dict[str, int]:
        """What the instance claims on ``host_uuid``: ``window_items`` says why an alternate gets the
        minimum."""
        return self.resources if host_uuid == self.host_uuid or not self.minimum else self.minimum


@dataclass(frozen=True)
class Item:
    provider_uuid: str
    provider_name: str
    resource_class: str
    amount: int
    vlan_tag: int | None = None


@dataclass(frozen=True)
class ARBody:
    start_s: int
    end_s: int
    instances: tuple[Instance, ...]
    items: tuple[Item, ...] = ()
    alternates: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # comp -> (uuid, name)
    generation: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": 1,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "generation": self.generation,
            "instances": [
                [i.component, i.index, i.host_uuid, i.host_name, i.resources, i.minimum]
                for i in self.instances
            ],
            "items": [
                [it.provider_uuid, it.provider_name, it.resource_class, it.amount, it.vlan_tag]
                for it in self.items
            ],
            "alternates": {c: [list(h) for h in hs] for c, hs in self.alternates.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ARBody:
        return cls(
            start_s=int(d["start_s"]),
            end_s=int(d["end_s"]),
            generation=int(d.get("generation", 0)),
            instances=tuple(
                Instance(c, int(i), u, n, dict(r), dict(m[0]) if m else {})
                for c, i, u, n, r, *m in d["instances"]
            ),
            items=tuple(Item(u, n, rc, int(a), t) for u, n, rc, a, t in d["items"]),
            alternates={c: [(str(u), str(n)) for u, n in hs] for c, hs in d["alternates"].items()},
        )


@dataclass(frozen=True)
class Swap:
    component: str
    instance: int
    from_host: str
    to_host: str


@dataclass(frozen=True)
class ClaimOutcome:
    result: ClaimResult
    project: str
    items: tuple[Item, ...]  # exactly what was allocated
    allocation_request: str | None = None
    swaps: tuple[Swap, ...] = ()


class ProviderUuids:
    """Provider id -> uuid, cached per process (a provider's uuid never changes; new ids reload)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._by_id: dict[int, str] = {}
        self._lock = threading.Lock()

    def of(self, ids: Iterable[int]) -> dict[int, str]:
        wanted = list(ids)
        known = self._by_id
        if any(i not in known for i in wanted):
            with self._lock, UnitOfWork(self.db, readonly=True) as uow:
                fresh = uow.allocation_requests.provider_uuids()
            self._by_id = known = fresh
        return {i: known[i] for i in wanted if i in known}


__all__ = [
    "ARBody",
    "AllocationRequestClaimed",
    "AllocationRequestError",
    "AllocationRequestExpired",
    "AllocationRequestNotFound",
    "ClaimOutcome",
    "Instance",
    "Item",
    "ProviderUuids",
    "Swap",
]
