"""The engine's only input: an immutable, plain picture of the inventory and its allocations.

The services layer builds a ``Snapshot`` from the database; the engine never touches the database.
Allocations are kept *columnar* (numpy arrays) rather than as one Python object per row: at a million
bookings, objects would cost more memory than the whole calendar index.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from slotbroker.domain.vlans import VlanSet

I64 = npt.NDArray[np.int64]
NO_VLAN = -1


@dataclass(frozen=True)
class InventorySnap:
    """One class on one host. ``capacity`` is already ``(total - reserved) * ratio``."""

    capacity: int
    min_unit: int = 1
    max_unit: int | None = None
    step_size: int = 1

    def admits(self, amount: int) -> bool:
        """Whether one allocation of ``amount`` follows the unit rules (not the free capacity)."""
        top = self.capacity if self.max_unit is None else min(self.max_unit, self.capacity)
        return self.min_unit <= amount <= top and amount % self.step_size == 0


@dataclass(frozen=True)
class HostSnap:
    id: int
    name: str
    site: str
    region: str | None = None
    traits: frozenset[str] = frozenset()
    aggregates: frozenset[str] = frozenset()
    location: tuple[float, float] | None = None
    inventories: Mapping[str, InventorySnap] = field(default_factory=dict)


@dataclass(frozen=True)
class SiteSnap:
    name: str
    region: str | None = None
    location: tuple[float, float] | None = None


@dataclass(frozen=True)
class LinkSnap:
    id: int
    name: str
    site_a: str
    site_b: str
    capacity_gbps: int
    latency_ms: float = 0.0


@dataclass(frozen=True)
class PortSnap:
    id: int
    site: str
    name: str
    vlans: VlanSet
    capacity_gbps: int


@dataclass(frozen=True)
class AllocationSnap:
    """One allocation row: ``provider_id`` is a host, link or facility-port id."""

    provider_id: int
    resource_class: str
    amount: int
    start_s: int
    end_s: int
    vlan_tag: int | None = None


@dataclass(frozen=True, eq=False)
class AllocationTable:
    """Allocations as parallel arrays; ``classes`` maps ``class_idx`` back to class names."""

    provider: I64
    class_idx: I64
    amount: I64
    start: I64
    end: I64
    vlan: I64
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.provider.shape[0])

    @classmethod
    def from_rows(cls, rows: Iterable[AllocationSnap]) -> AllocationTable:
        names: dict[str, int] = {}
        cols: list[list[int]] = [[], [], [], [], [], []]
        for r in rows:
            ci = names.setdefault(r.resource_class, len(names))
            tag = NO_VLAN if r.vlan_tag is None else r.vlan_tag
            for col, v in zip(cols, (r.provider_id, ci, r.amount, r.start_s, r.end_s, tag), strict=True):
                col.append(v)
        arr = [np.asarray(c, dtype=np.int64) for c in cols]
        return cls(arr[0], arr[1], arr[2], arr[3], arr[4], arr[5], tuple(names))

    def rows(self) -> Iterable[AllocationSnap]:
        for i in range(len(self)):
            tag = int(self.vlan[i])
            yield AllocationSnap(
                int(self.provider[i]),
                self.classes[int(self.class_idx[i])],
                int(self.amount[i]),
                int(self.start[i]),
                int(self.end[i]),
                None if tag == NO_VLAN else tag,
            )


@dataclass(frozen=True, eq=False)
class Snapshot:
    hosts: tuple[HostSnap, ...]
    sites: tuple[SiteSnap, ...]
    links: tuple[LinkSnap, ...] = ()
    ports: tuple[PortSnap, ...] = ()
    allocations: AllocationTable = field(default_factory=lambda: AllocationTable.from_rows(()))

    def __post_init__(self) -> None:
        ids = [h.id for h in self.hosts] + [lk.id for lk in self.links] + [p.id for p in self.ports]
        if len(set(ids)) != len(ids):
            raise ValueError("provider ids must be unique across hosts, links and facility ports")
        site_names = {s.name for s in self.sites}
        for h in self.hosts:
            if h.site not in site_names:
                raise ValueError(f"host {h.name!r} names unknown site {h.site!r}")
        for lk in self.links:
            if lk.site_a not in site_names or lk.site_b not in site_names:
                raise ValueError(f"link {lk.name!r} joins an unknown site")
        for p in self.ports:
            if p.site not in site_names:
                raise ValueError(f"facility port {p.name!r} names unknown site {p.site!r}")
