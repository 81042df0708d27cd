"""The human time parser (domain/humantime.py): every form, property tests against plain arithmetic."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slotbroker.domain.errors import ValidationFailed
from slotbroker.domain.humantime import duration_seconds, parse_duration, parse_instant

NOW = datetime(2026, 12, 6, 15, 42, 7, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")

parts = st.tuples(st.integers(0, 400), st.integers(0, 23), st.integers(0, 59), st.integers(0, 59)).filter(any)


def reference(days: int, hours: int, minutes: int, seconds: int) -> int:
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def compact(days: int, hours: int, minutes: int, seconds: int) -> str:
    return "".join(f"{v}{u}" for v, u in zip((days, hours, minutes, seconds), "dhms", strict=True) if v)


@given(parts)
def test_compact_form_matches_reference(p: tuple[int, int, int, int]) -> None:
    assert duration_seconds(compact(*p)) == reference(*p)


@given(parts)
def test_slurm_clock_matches_reference(p: tuple[int, int, int, int]) -> None:
    d, h, m, s = p
    assert duration_seconds(f"{d}-{h}:{m:02d}:{s:02d}") == reference(*p)
    assert duration_seconds(f"{d * 24 + h}:{m:02d}:{s:02d}") == reference(*p)


@given(parts)
def test_iso_form_matches_reference(p: tuple[int, int, int, int]) -> None:
    d, h, m, s = p
    assert duration_seconds(f"P{d}DT{h}H{m}M{s}S") == reference(*p)


@given(parts, st.sampled_from(["+", "-"]), st.booleans())
def test_relative_instants_match_reference(p: tuple[int, int, int, int], sign: str, word: bool) -> None:
    delta = timedelta(seconds=reference(*p))
    got = parse_instant(f"{'now' if word else ''}{sign}{compact(*p)}", now=NOW, tz=PARIS)
    assert got == (NOW + delta if sign == "+" else NOW - delta)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("8h", 8 * 3600),
        ("90m", 5400),
        ("1d12h", 36 * 3600),
        ("8:00:00", 8 * 3600),
        ("PT8H", 8 * 3600),
        ("pt90m", 5400),
        ("2 hours", 7200),
        ("1w", 7 * 86400),
        ("3600", 3600),
        ("1-12", 36 * 3600),
        ("1-12:30", 36 * 3600 + 1800),
        (" 45s ", 45),
    ],
)
def test_duration_forms(text: str, seconds: int) -> None:
    assert duration_seconds(text) == seconds
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "8", "8:00", "8x", "h", "P1M", "P1Y", "1:60:00", "-1h", "8h and"])
def test_bad_durations_name_the_field(text: str) -> None:
    if text == "8":  # a bare number is seconds, as the API reads it
        assert duration_seconds(text) == 8
        return
    with pytest.raises(ValidationFailed) as info:
        duration_seconds(text, field="--duration")
    assert info.value.errors[0].pointer == "--duration"
    assert "8h" in info.value.detail  # says what would be accepted


def test_signed_durations() -> None:
    assert duration_seconds("-1h", signed=True) == -3600
    assert duration_seconds("+PT2H", signed=True) == 7200


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("NOW + 2h", NOW + timedelta(hours=2)),
        ("+7d", NOW + timedelta(days=7)),
        ("now-30m", NOW - timedelta(minutes=30)),
        ("tomorrow 09:00", datetime(2026, 12, 7, 9, 0, tzinfo=PARIS)),
        ("today", datetime(2026, 12, 6, 0, 0, tzinfo=PARIS)),
        ("yesterday 23:59:30", datetime(2026, 12, 5, 23, 59, 30, tzinfo=PARIS)),
        ("2026-12-24", datetime(2026, 12, 24, tzinfo=PARIS)),
        ("2026-12-24 18:30", datetime(2026, 12, 24, 18, 30, tzinfo=PARIS)),
        ("2026-12-24T18:30:00Z", datetime(2026, 12, 24, 18, 30, tzinfo=UTC)),
        ("2026-12-24T18:30:00+05:30", datetime(2026, 12, 24, 13, 0, tzinfo=UTC)),
    ],
)
def test_instant_forms(text: str, expected: datetime) -> None:
    got = parse_instant(text, now=NOW, tz=PARIS)
    assert got.tzinfo is not None
    assert got == expected


def test_tomorrow_is_the_users_tomorrow() -> None:
    late = datetime(2026, 12, 6, 23, 30, tzinfo=UTC)  # already 7 December in Tokyo
    tokyo = ZoneInfo("Asia/Tokyo")
    assert parse_instant("tomorrow", now=late, tz=tokyo).date() == date(2026, 12, 8)
    assert parse_instant("tomorrow", now=late, tz=UTC).date() == date(2026, 12, 7)


@pytest.mark.parametrize("text", ["", "soon", "tomorrow 25:00", "tomorrow noon", "2026-13-01", "now+", "+x"])
def test_bad_instants_name_the_field(text: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        parse_instant(text, now=NOW, tz=UTC, field="--start")
    assert info.value.errors[0].pointer == "--start"


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse_instant("now", now=NOW.replace(tzinfo=None), tz=UTC)
