"""Epoch seconds and aware datetimes: the store and the engine count in integer seconds
(docs/decisions/0002-integer-seconds.md); views and events show UTC datetimes."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now_s() -> int:
    """The current time in whole epoch seconds."""
    return int(time.time())


def to_datetime(seconds: int) -> datetime:
    """Epoch seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


def to_epoch(value: datetime) -> int:
    """An aware datetime (naive ones are read as UTC) as whole epoch seconds."""
    return int((value if value.tzinfo is not None else value.replace(tzinfo=UTC)).timestamp())
