"""Leases and quotas at the edges: commands the API reads, views it returns, and the iCalendar feed.

Plain pydantic (no store imports) so the Python client and other adapters can share them. Times are
ISO 8601 with an offset at the edges and integer epoch seconds inside (``start_s`` / ``end_s`` are given
too, for programs that prefer them).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from slotbroker.domain.claims import MAX_ITEMS
from slotbroker.domain.strict import Int


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def epoch(value: datetime) -> int:
    """Whole seconds since the epoch (floored) of an aware datetime."""
    return int(value.timestamp() // 1)


def instant(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# -- commands -----------------------------------------------------------------------------------------------


class LeaseItemSpec(_Strict):
    provider_uuid: UUID
    resource_class: str = Field(min_length=1, max_length=255, examples=["VCPU"])
    amount: Int = Field(ge=1, le=2**53)
    vlan_tag: Int | None = Field(None, ge=1, le=4094, description="VLAN items only (class VLAN, amount 1).")


class CreateLease(_Strict):
    name: str = Field("", max_length=200)
    project: str | None = Field(
        None, min_length=1, max_length=200, description="Admins only; default the caller's project."
    )
    start: AwareDatetime = Field(description="ISO 8601 with an offset; a start in the past means now.")
    end: AwareDatetime
    items: list[LeaseItemSpec] = Field(min_length=1, max_length=MAX_ITEMS)


class UpdateLease(_Strict):
    """Extend, shorten or (while PENDING) move a lease. All or nothing."""

    generation: Int = Field(ge=0, description="The generation you read; stale -> 409 concurrent_update.")
    start: AwareDatetime | None = Field(None, description="PENDING leases only (a move).")
    end: AwareDatetime | None = None
    allow_host_swap: bool = Field(
        True,
        description="Moving a PENDING lease: a host that no longer fits may be swapped for an alternate "
        "host of the same site with the same traits and resource classes.",
    )


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


class LeaseView(BaseModel):
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
    events: list[LeaseEventView]
    transitions: list[TransitionView] = Field(description="Each status the lease entered, once, in order.")
    notices: list[NoticeView]


class LeaseList(BaseModel):
    items: list[LeaseView]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page; null at the end.")


class QuotaView(BaseModel):
    project: str
    resource_class: str
    max_concurrent: int | None
    max_resource_hours: int | None


# -- iCalendar (RFC 5545) -----------------------------------------------------------------------------------

ICAL_STATUS = {"CANCELLED": "CANCELLED", "PENDING": "CONFIRMED", "ACTIVE": "CONFIRMED", "ENDED": "CONFIRMED"}


def ical_text(value: str) -> str:
    """Escape a TEXT value (RFC 5545 3.3.11)."""
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def fold(line: str) -> str:
    """Fold a content line at 75 octets (RFC 5545 3.1): CRLF + one space before each continuation,
    never splitting a UTF-8 sequence."""
    data = line.encode()
    if len(data) <= 75:
        return line + "\r\n"
    parts: list[bytes] = []
    limit = 75
    while data:
        cut = min(limit, len(data))
        while cut < len(data) and (data[cut] & 0xC0) == 0x80:  # do not start a piece mid-character
            cut -= 1
        parts.append(data[:cut])
        data = data[cut:]
        limit = 74  # continuation lines carry the leading space
    return "\r\n ".join(p.decode() for p in parts) + "\r\n"


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def render_ical(leases: Iterable[LeaseView], *, now: datetime, name: str) -> str:
    """A VCALENDAR with one VEVENT per lease; CRLF line endings, lines folded at 75 octets."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//slotbroker//leases//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{ical_text(name)}",
    ]
    for lease in leases:
        items = ", ".join(f"{it.amount} {it.resource_class} on {it.provider_name}" for it in lease.items)
        title = lease.name or f"lease {lease.id[:8]}"
        lines += [
            "BEGIN:VEVENT",
            f"UID:{lease.id}@slotbroker",
            f"DTSTAMP:{_stamp(now)}",
            f"DTSTART:{_stamp(lease.start)}",
            f"DTEND:{_stamp(lease.end)}",
            f"SEQUENCE:{lease.generation}",
            f"SUMMARY:{ical_text(f'{title} [{lease.status}]')}",
            f"DESCRIPTION:{ical_text(f'project {lease.project}; status {lease.status}; {items}')}",
            f"STATUS:{ICAL_STATUS.get(lease.status, 'CONFIRMED')}",
            f"X-SLOTBROKER-STATUS:{lease.status}",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "".join(fold(line) for line in lines)
