"""The leases as an iCalendar feed (RFC 5545): one VEVENT per lease, CRLF lines folded at 75 octets."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from slotbroker.wire.leases import LeaseView

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


def render_ical(leases: Iterable[LeaseView], *, now: datetime, name: str, total: int | None = None) -> str:
    """A VCALENDAR with one VEVENT per lease; CRLF line endings, lines folded at 75 octets. ``total``:
    how many leases there are in all when ``leases`` is only the newest of them - the calendar says so
    (``X-WR-CALDESC``, which calendar apps show, and ``X-SLOTBROKER-TRUNCATED``) rather than leaving
    the rest out silently."""
    leases = list(leases)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//slotbroker//leases//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{ical_text(name)}",
    ]
    if total is not None and total > len(leases):
        note = f"the newest {len(leases)} of {total} leases; list the others with GET /v1/leases"
        lines += [f"X-WR-CALDESC:{ical_text(note)}", f"X-SLOTBROKER-TRUNCATED:{len(leases)}/{total}"]
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
