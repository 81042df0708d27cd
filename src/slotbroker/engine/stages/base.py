"""Typed rejection reasons shared by every stage (Kubernetes-framework style status codes)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

NEVER = 2**62  # retry_at meaning: not within any range


class Reason(StrEnum):
    MISSING_TRAIT = "missing_trait"
    FORBIDDEN_TRAIT = "forbidden_trait"
    NOT_IN_AGGREGATE = "not_in_aggregate"
    WRONG_SITE = "wrong_site"
    WRONG_HOST = "wrong_host"
    TOO_FAR = "too_far"
    NO_INVENTORY = "no_inventory"
    UNIT_RULE = "unit_rule"
    INSUFFICIENT_CAPACITY = "insufficient_capacity"
    LINK_BANDWIDTH = "link_bandwidth"
    LINK_LATENCY = "link_latency"
    NO_ROUTE = "no_route"
    PORT_BANDWIDTH = "port_bandwidth"
    VLAN_UNAVAILABLE = "vlan_unavailable"
    UNKNOWN_PORT = "unknown_port"
    GROUP_CONSTRAINT = "group_constraint"
    SEARCH_BUDGET = "search_budget"


@dataclass(frozen=True)
class Rejection:
    """Why one start time failed: what blocked, and the earliest time worth trying again (a lower
    bound, or None when unknown)."""

    reason: Reason
    component: str | None = None
    resource_class: str | None = None
    link: str | None = None
    port: str | None = None
    retry_at: int | None = None
