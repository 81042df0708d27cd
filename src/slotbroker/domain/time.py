"""Time at the edges: integer epoch seconds inside, aware UTC ``datetime`` outside.

Every layer stores and compares integer seconds (docs/decisions/0002-integer-seconds.md); the wire shows
ISO 8601. These are the conversions, written once so that flooring and the time zone cannot drift.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from enum import StrEnum


def to_datetime(seconds: int) -> datetime:
    """An aware UTC datetime of epoch seconds."""
    return datetime.fromtimestamp(seconds, UTC)


def to_epoch(value: datetime) -> int:
    """Whole seconds since the epoch (floored) of a datetime; a naive one is read as UTC."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return int(aware.timestamp() // 1)


def now_s() -> int:
    """Now, in whole epoch seconds."""
    return int(time.time())


class Bucket(StrEnum):
    """The resolution of a calendar view: what one column of the calendar covers."""

    HOUR = "hour"
    DAY = "day"
    WEEK = "week"


BUCKET_S = {Bucket.HOUR: 3600, Bucket.DAY: 86400, Bucket.WEEK: 7 * 86400}
