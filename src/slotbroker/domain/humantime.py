"""Times and durations the way people type them: ``now+2h``, ``tomorrow 09:00``, ``8h``, ``8:00:00``.

A pure parser (the caller passes ``now`` and the time zone), so the CLI and, later, the API accept the
same forms and tests can pin the clock. Users arrive with Slurm's ``--begin=now+1hour`` and
``-t 8:00:00``, Blazar's ``--prolong-for 2h`` and ISO 8601 from APIs; each is read here and nowhere else.
Errors are ``ValidationFailed`` naming the field, with an example of what would be accepted.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, tzinfo

import isodate

from slotbroker.domain.errors import FieldError, ValidationFailed

UNIT_S = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_UNIT_WORDS = {
    "week": "w",
    "weeks": "w",
    "day": "d",
    "days": "d",
    "hour": "h",
    "hours": "h",
    "hr": "h",
    "hrs": "h",
    "min": "m",
    "mins": "m",
    "minute": "m",
    "minutes": "m",
    "sec": "s",
    "secs": "s",
    "second": "s",
    "seconds": "s",
}
_COMPACT = re.compile(r"(\d+)\s*([a-z]+)")
_CLOCK = re.compile(r"(?:(\d+)-)?(\d+):(\d{2}):(\d{2})")  # Slurm's [D-]H:MM:SS
_SLURM_DAYS = re.compile(r"(\d+)-(\d+)(?::(\d{2}))?")  # Slurm's D-H and D-H:MM
_RELATIVE = re.compile(r"(now)?\s*([+-])\s*(.+)")
_DAY_WORDS = {"today": 0, "tomorrow": 1, "yesterday": -1}
_CLOCK_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")

DURATION_FORMS = "8h, 90m, 1d12h, 8:00:00 or PT8H"
INSTANT_FORMS = "now, now+2h, +7d, tomorrow 09:00, 2026-12-07, 2026-12-07 09:00 or ISO 8601"


def _bad(field: str, text: str, forms: str) -> ValidationFailed:
    return ValidationFailed(
        f"{field}: cannot read {text!r}; try {forms}", [FieldError(field, f"cannot read {text!r}")]
    )


def _compact(text: str) -> int | None:
    """``1d12h``, ``90m``, ``2 hours``: the seconds, or None when ``text`` is not of this form."""
    pos, total, seen = 0, 0, False
    for m in _COMPACT.finditer(text):
        if text[pos : m.start()].strip():
            return None
        unit = _UNIT_WORDS.get(m.group(2), m.group(2))
        if unit not in UNIT_S:
            return None
        total += int(m.group(1)) * UNIT_S[unit]
        pos, seen = m.end(), True
    return total if seen and not text[pos:].strip() else None


def _clock(text: str) -> int | None:
    m = _CLOCK.fullmatch(text)
    if m is not None:
        days, hours, minutes, seconds = (int(g) if g else 0 for g in m.groups())
        if minutes < 60 and seconds < 60:
            return days * 86400 + hours * 3600 + minutes * 60 + seconds
        return None
    m = _SLURM_DAYS.fullmatch(text)
    if m is not None:
        days, hours, minutes = (int(g) if g else 0 for g in m.groups())
        return days * 86400 + hours * 3600 + minutes * 60 if minutes < 60 else None
    return None


def _iso(text: str) -> int | None:
    if not text.startswith("p"):
        return None
    try:
        value = isodate.parse_duration(text.upper())
    except (isodate.ISO8601Error, ValueError):
        return None
    if not isinstance(value, timedelta):  # years or months have no fixed length
        return None
    return int(value.total_seconds()) if value.total_seconds() == int(value.total_seconds()) else None


def duration_seconds(text: str, *, field: str = "duration", signed: bool = False) -> int:
    """Whole seconds of ``8h``, ``90m``, ``1d12h``, ``2 hours``, Slurm's ``8:00:00``/``1-12:00:00``,
    ISO 8601 ``PT8H``, or bare seconds (as the API's ``duration`` takes them).

    A leading ``-`` or ``+`` is allowed only when ``signed`` (``extend --by -1h``). Two-part ``8:00`` is
    refused: Slurm reads it as minutes and seconds, people as hours and minutes."""
    raw = text.strip().lower()
    sign = 1
    if signed and raw[:1] in "+-" and raw:
        sign = -1 if raw[0] == "-" else 1
        raw = raw[1:].strip()
    if not raw:
        raise _bad(field, text, DURATION_FORMS)
    value = int(raw) if raw.isdigit() else _compact(raw)
    if value is None:
        value = _clock(raw)
    if value is None:
        value = _iso(raw)
    if value is None:
        raise _bad(field, text, DURATION_FORMS)
    return sign * value


def parse_duration(text: str, *, field: str = "duration", signed: bool = False) -> timedelta:
    """:func:`duration_seconds` as a ``timedelta``."""
    return timedelta(seconds=duration_seconds(text, field=field, signed=signed))


def _local(d: date, t: time, tz: tzinfo) -> datetime:
    return datetime.combine(d, t).replace(tzinfo=tz)


def parse_instant(text: str, *, now: datetime, tz: tzinfo, field: str = "start") -> datetime:
    """An aware datetime of ``now``, ``now+2h``, ``now-30m``, ``+7d``, ``today``/``tomorrow``/``yesterday``
    with an optional ``HH:MM``, a plain date (midnight), a date and time, or ISO 8601.

    ``now`` must be aware; times without an offset are read in ``tz`` (the user's zone)."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    raw = " ".join(text.strip().lower().split())
    if raw == "now":
        return now
    rel = _RELATIVE.fullmatch(raw)
    if rel is not None and (rel.group(1) or raw[0] in "+-"):
        delta = duration_seconds(rel.group(3), field=field)
        return now + timedelta(seconds=delta if rel.group(2) == "+" else -delta)
    word, _, rest = raw.partition(" ")
    if word in _DAY_WORDS:
        day = now.astimezone(tz).date() + timedelta(days=_DAY_WORDS[word])
        if not rest:
            return _local(day, time(0, 0), tz)
        clock = _CLOCK_TIME.fullmatch(rest)
        if clock is None:
            raise _bad(field, text, INSTANT_FORMS)
        h, m, s = (int(g) if g else 0 for g in clock.groups())
        if h > 23 or m > 59 or s > 59:
            raise _bad(field, text, INSTANT_FORMS)
        return _local(day, time(h, m, s), tz)
    iso = text.strip().replace("z", "Z")
    if iso.endswith("Z"):
        iso = iso[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(iso)
    except ValueError:
        raise _bad(field, text, INSTANT_FORMS) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)
