"""What each site has, per resource class, and how much of it is free at one instant: the calendar
index's numbers summed per site (a pure read of the index, no database)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from slotbroker.engine.calendar import CalendarIndex


@dataclass(frozen=True)
class ClassCapacity:
    resource_class: str
    capacity: int  # sum over the site's hosts of (total - reserved) * allocation_ratio
    free: int  # what is not allocated at the instant asked about (holds included)
    largest_free: int  # the most one host of the site has free then: the biggest single instance
    hosts: int  # hosts of the site that stock the class


@dataclass(frozen=True)
class SiteCapacity:
    name: str
    region: str | None
    location: tuple[float, float] | None
    hosts: int
    links: int
    ports: int
    classes: tuple[ClassCapacity, ...]


def site_capacities(index: CalendarIndex, at_s: int) -> list[SiteCapacity]:
    """Every site of the index, by name, with its classes (by name) free over [at_s, at_s + 1)."""
    topo = index.topo
    links = [0] * len(topo.sites)
    for lk in topo.links:
        links[topo.site_row[lk.site_a]] += 1
        links[topo.site_row[lk.site_b]] += 1
    ports = [0] * len(topo.sites)
    for p in topo.ports:
        ports[topo.site_row[p.site]] += 1
    out: list[SiteCapacity] = []
    for row, site in enumerate(topo.sites):
        hosts = topo.hosts_of_site[row]
        classes: list[ClassCapacity] = []
        for cls in topo.classes:
            cap = topo.host_cap[cls][hosts]
            stocked = cap > 0
            if not stocked.any():
                continue
            free = np.maximum(index.host_free(cls, hosts, at_s, at_s + 1), 0)[stocked]
            classes.append(
                ClassCapacity(
                    resource_class=cls,
                    capacity=int(sum(cap[stocked].tolist())),
                    free=int(sum(free.tolist())),
                    largest_free=int(free.max()),
                    hosts=int(stocked.sum()),
                )
            )
        out.append(
            SiteCapacity(
                name=site.name,
                region=site.region,
                location=site.location,
                hosts=int(hosts.shape[0]),
                links=links[row],
                ports=ports[row],
                classes=tuple(classes),
            )
        )
    return sorted(out, key=lambda s: s.name)
