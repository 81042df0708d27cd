"""Leases and quotas at the edges: commands the API reads and views it returns.

Times are ISO 8601 with an offset at the edges and integer epoch seconds inside (``start_s`` / ``end_s``
are given too, for programs that prefer them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, field_validator

from slotbroker.domain.claims import MAX_ITEMS
from slotbroker.domain.request import Policy
from slotbroker.domain.strict import Int
from slotbroker.wire.display import Tabular

MAX_COMPACT = 1000  # leases one compaction call moves at most


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- commands -----------------------------------------------------------------------------------------------


class LeaseItemSpec(_Strict):
    provider_uuid: UUID
    resource_class: str = Field(min_length=1, max_length=255, examples=["VCPU"])
    amount: Int = Field(ge=1, le=2**53)
    vlan_tag: Int | None = Field(None, ge=1, le=4094, description="VLAN items only (class VLAN, amount 1).")


class CreateLease(_Strict):
    name: str = Field(
        "", max_length=200, description="Yours to choose; any command that takes the lease's id takes it too."
    )
    project: str | None = Field(
        None, min_length=1, max_length=200, description="Admins only; default the caller's project."
    )
    start: AwareDatetime = Field(description="ISO 8601 with an offset; a start in the past means now.")
    end: AwareDatetime
    items: list[LeaseItemSpec] = Field(min_length=1, max_length=MAX_ITEMS)


class UpdateLease(_Strict):
    """Extend, shorten, (while PENDING) move or rename a lease. All or nothing."""

    generation: Int = Field(ge=0, description="The generation you read; stale -> 409 concurrent_update.")
    name: str | None = Field(None, max_length=200, description="A new name (any status); absent: unchanged.")
    start: AwareDatetime | None = Field(None, description="PENDING leases only (a move).")
    end: AwareDatetime | None = None
    allow_host_swap: bool = Field(
        True,
        description="Moving a PENDING lease: a host that no longer fits may be swapped for an alternate "
        "host of the same site with the same traits and resource classes.",
    )


_SWAP = (
    "Hosts may change: the lease may go to other hosts of the same site with exactly the same traits "
    "(the host-swap rule of a move); false: only its own hosts, earlier."
)
_POLICY = "find-slot's placement policy for choosing among the hosts that fit earliest."


class CompactLease(_Strict):
    """Move a PENDING lease to its earliest possible start (never later; unchanged when nothing earlier
    fits), as if the lease itself were gone from the calendar."""

    generation: Int = Field(ge=0, description="The generation you read; stale -> 409 concurrent_update.")
    allow_host_swap: StrictBool = Field(True, description=_SWAP)
    policy: Policy = Field(Policy.EARLIEST, description=_POLICY)


class CompactLeases(_Strict):
    """Compact several PENDING leases, one after another, each in its own transaction."""

    leases: list[str] | None = Field(
        None,
        min_length=1,
        max_length=MAX_COMPACT,
        description="Lease ids, unique id prefixes or names, compacted in this order; absent: your "
        "project's PENDING leases (admins: every project's), earliest start first.",
    )
    limit: Int = Field(MAX_COMPACT, ge=1, le=MAX_COMPACT, description="Absent `leases`: at most this many.")
    allow_host_swap: StrictBool = Field(True, description=_SWAP)
    policy: Policy = Field(Policy.EARLIEST, description=_POLICY)

    @field_validator("leases")
    @classmethod
    def _refs(cls, value: list[str] | None) -> list[str] | None:
        for ref in value or []:
            if not 1 <= len(ref) <= 200:
                raise ValueError("leases: each is a lease id, prefix or name of 1-200 characters")
        return value


class SetQuota(_Strict):
    max_concurrent: Int | None = Field(
        None, ge=0, le=2**53, description="Most of the class the project may hold at any one time."
    )
    max_resource_hours: Int | None = Field(
        None, ge=0, le=2**53, description="Most amount x hours the project may have booked from now on."
    )


# -- views --------------------------------------------------------------------------------------------------


class LeaseItemView(BaseModel):
    provider_uuid: str
    provider_name: str
    resource_class: str
    amount: int
    vlan_tag: int | None = None
    start: datetime
    end: datetime


class LeaseEventView(BaseModel):
    kind: str = Field(description="start, before_end or end")
    due: datetime
    fired_at: datetime | None


class TransitionView(BaseModel):
    status: str
    at: datetime


class NoticeView(BaseModel):
    kind: str = Field(description="before_end: the lease ends soon")
    at: datetime
    detail: str


class LeaseView(Tabular, BaseModel):
    model_config = ConfigDict(title="Lease")

    id: str
    name: str
    project: str
    status: str = Field(description="PENDING, ACTIVE, ENDED, CANCELLED or ERROR")
    start: datetime
    end: datetime
    start_s: int
    end_s: int
    generation: int = Field(description="Send it back with updates; a stale one is refused with 409.")
    created_at: datetime
    items: list[LeaseItemView]
    placement: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Component -> host name per instance, as the request named its components (leases "
        "from accepted offers, following host swaps; empty for leases booked from explicit items).",
    )
    events: list[LeaseEventView]
    transitions: list[TransitionView] = Field(description="Each status the lease entered, once, in order.")
    notices: list[NoticeView]

    def records(self) -> list[dict[str, Any]]:
        items = "; ".join(f"{it.provider_name}: {it.amount} {it.resource_class}" for it in self.items)
        return [
            {
                "lease": self.id,
                "name": self.name,
                "project": self.project,
                "status": self.status,
                "start": self.start,
                "end": self.end,
                "items": items,
            }
        ]


class LeaseList(Tabular, BaseModel):
    items: list[LeaseView]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page; null at the end.")

    def records(self) -> list[dict[str, Any]]:
        return [row for lease in self.items for row in lease.records()]


class LeaseCompaction(BaseModel):
    lease: LeaseView
    moved: bool
    previous_start: datetime
    reason: str | None = Field(
        None, description="Why it stayed: no_earlier_window, or due_now (it starts now, nothing is earlier)."
    )


class CompactionOutcome(Tabular, BaseModel):
    lease: str = Field(description="As you named it (or its id).")
    name: str
    moved: bool
    previous_start: datetime | None
    start: datetime | None
    reason: str | None = Field(
        None,
        description="Why it stayed: no_earlier_window, due_now, not_pending, not_compactable (holds a "
        "link, facility port or VLAN tag), not_found.",
    )

    def records(self) -> list[dict[str, Any]]:
        return [self.model_dump()]


class CompactionReport(Tabular, BaseModel):
    items: list[CompactionOutcome]
    moved: int = Field(description="How many leases moved earlier.")

    def records(self) -> list[dict[str, Any]]:
        return [row for item in self.items for row in item.records()]


class QuotaView(BaseModel):
    project: str
    resource_class: str
    max_concurrent: int | None
    max_resource_hours: int | None
