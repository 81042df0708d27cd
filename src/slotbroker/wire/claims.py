"""Wire models of claims and allocation candidates (plain pydantic, shared by the server and the client)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from slotbroker.domain.claims import ConsumerKind


class ClaimedAllocation(BaseModel):
    provider_uuid: str
    provider_name: str | None = None
    resource_class: str
    amount: int
    vlan_tag: int | None = None


class HostSwap(BaseModel):
    component: str
    instance: int
    from_host: str
    to_host: str


class ClaimView(BaseModel):
    """``POST /v1/claims``: the consumer a claim made (a lease or a hold) and its allocations."""

    uuid: str
    kind: ConsumerKind = Field(description="lease or hold")
    status: str
    project: str
    start: datetime
    end: datetime
    expires: datetime | None = None
    allocation_request: str | None = None
    allocations: list[ClaimedAllocation]
    swaps: list[HostSwap] = Field(default_factory=list, description="Hosts replaced by alternates.")
    attempts: int


class ResourceUse(BaseModel):
    capacity: int
    used: int = Field(description="Peak usage over [start, end).")


class ProviderSummary(BaseModel):
    name: str
    resources: dict[str, ResourceUse]
    traits: list[str]
    root_provider_uuid: str
    parent_provider_uuid: str | None = None


class CandidateAllocation(BaseModel):
    resources: dict[str, int]


class CandidateRequest(BaseModel):
    allocations: dict[str, CandidateAllocation]
    id: str = Field(description="Allocation request id: POST /v1/claims {allocation_request: id}.")


class Candidates(BaseModel):
    """``GET /v1/allocation-candidates``, Placement's shape plus a claimable ``id`` per request."""

    allocation_requests: list[CandidateRequest]
    provider_summaries: dict[str, ProviderSummary]
    start: int
    end: int
    calendar_generation: int
