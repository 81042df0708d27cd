"""ISO 8601 as the IVOA documents write it: instants, durations and start intervals, both ways."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import cast

import isodate


def instant(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration_text(seconds: int) -> str:
    """Seconds as an ISO 8601 duration (``PT1H30M``, ``PT0S``)."""
    if seconds <= 0:
        return "PT0S"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    out = "P" + (f"{days}D" if days else "")
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{secs}S" if secs else "")
    return out + ("T" + clock if clock else "")


def parse_instant(text: str) -> datetime:
    """An ISO 8601 date-time or date; no offset means UTC (the spec's pattern allows both)."""
    if "T" in text:
        dt = cast(datetime, isodate.parse_datetime(text))
    else:
        d = isodate.parse_date(text)
        if not isinstance(d, date):
            raise ValueError(text)
        dt = datetime(d.year, d.month, d.day)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def parse_duration(text: str) -> int:
    d = isodate.parse_duration(text)
    if not isinstance(d, timedelta):
        raise ValueError("months or years are ambiguous; give days, hours, minutes or seconds")
    return int(d.total_seconds())


def parse_start_interval(text: str) -> tuple[int, int]:
    """``start/end``, ``start/duration``, ``duration/end`` or a single instant -> (first, last) start."""
    parts = text.split("/")
    if len(parts) == 1:
        at = parse_instant(parts[0])
        return math.ceil(at.timestamp()), math.floor(at.timestamp())
    if len(parts) != 2 or not all(parts):
        raise ValueError("not an interval")
    a, b = parts
    if a.startswith("P"):
        end = parse_instant(b)
        start = end - timedelta(seconds=parse_duration(a))
    else:
        start = parse_instant(a)
        end = start + timedelta(seconds=parse_duration(b)) if b.startswith("P") else parse_instant(b)
    return math.ceil(start.timestamp()), math.floor(end.timestamp())
