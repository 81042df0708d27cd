"""What a search returns: windows, or a typed explanation of why nothing fits."""

from __future__ import annotations

from dataclasses import dataclass, field

from slotbroker.engine.stages.base import Reason


@dataclass(frozen=True)
class LinkRoute:
    a: str
    b: str
    links: tuple[str, ...]  # link names in path order; empty when both ends share a site
    latency_ms: float


@dataclass(frozen=True)
class PortAssignment:
    site: str
    port: str
    component: str
    vlans: tuple[int, ...]
    links: tuple[str, ...]  # route from the component's site to the port's site


@dataclass(frozen=True)
class Window:
    start: int
    end: int
    placement: dict[str, list[str]]  # component -> host names, one per instance
    routes: tuple[LinkRoute, ...]  # aligned with request.links
    ports: tuple[PortAssignment, ...]  # aligned with request.facility_ports
    score: float
    alternates: dict[str, list[str]]  # component -> other hosts that also fit this window
    grants: dict[str, list[dict[str, int]]] = field(default_factory=dict)  # elastic amounts granted
    sites: dict[str, str] = field(default_factory=dict)  # component -> site


@dataclass(frozen=True)
class Blocker:
    """One constraint that blocks the request, and the earliest start if it alone were relaxed."""

    reason: Reason
    detail: str
    component: str | None = None
    resource_class: str | None = None
    link: str | None = None
    port: str | None = None
    earliest_if_relaxed: int | None = None


@dataclass(frozen=True)
class Explanation:
    blockers: tuple[Blocker, ...]
    earliest_after_range: int | None  # earliest start if latest_end were pushed out (bounded)


@dataclass(frozen=True)
class SearchResult:
    windows: tuple[Window, ...]
    explanation: Explanation | None
    generation: int
    candidates_tried: int
    searched_until: int | None = None  # the first start not examined when a time budget ran out
