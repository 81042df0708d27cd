"""The terminal heat map (cli/heatmap.py): a golden picture, shades at their thresholds, the day view."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from slotbroker.cli.heatmap import NONE_FREE, buckets, render, shade
from slotbroker.wire.calendar import CalendarResponse, CalendarRow

START = datetime(2026, 12, 6, 14, tzinfo=UTC)


def calendar(free: dict[tuple[str, str], list[int]], capacity: int, step: timedelta) -> CalendarResponse:
    n = len(next(iter(free.values())))
    return CalendarResponse(
        resolution="hour" if step < timedelta(days=1) else "day",
        bucket_s=int(step.total_seconds()),
        starts=[START + i * step for i in range(n)],
        rows=[
            CalendarRow(
                kind=kind, name=name, resource_class="GPU_A30", capacity=capacity, used=[0] * n, free=f
            )
            for (kind, name), f in free.items()
        ],
    )


GOLDEN = """\
     12-06    12-07
        18    00    06    12    18
STAR ███▓▒··▒▓██████▓▒··▒▓██████▓▒·  4 GPU_A30
TACC ██@@@█████████████████████████  4 GPU_A30"""


def test_golden_hourly_heat_map_in_the_users_zone() -> None:
    cal = calendar(
        {
            ("site", "TACC"): [4] * 30,
            ("site", "STAR"): ([4, 4, 3, 2, 1, 0, 0, 1, 2, 3, 4, 4] * 3)[:30],
            ("host", "star-w1"): [0] * 30,  # hosts are not rows of the map
        },
        4,
        timedelta(hours=1),
    )
    lines = render(cal, "GPU_A30", {"TACC": {2, 3, 4}}, ZoneInfo("Europe/Paris"))
    assert "\n".join(lines) == GOLDEN


def test_other_classes_are_not_drawn() -> None:
    cal = calendar({("site", "TACC"): [1, 1]}, 1, timedelta(hours=1))
    assert not any("TACC" in line for line in render(cal, "VCPU", {}, UTC))  # header lines only


def test_day_view_has_one_header_line() -> None:
    cal = calendar({("site", "MASS"): [2] * 8}, 2, timedelta(days=1))
    assert render(cal, "GPU_A30", {}, UTC) == ["     12-06", "MASS ████████  2 GPU_A30"]


def test_shades_follow_the_free_share() -> None:
    assert [shade(f, 4) for f in (4, 3, 2, 1, 0)] == ["█", "█", "▓", "▒", NONE_FREE]
    assert shade(1, 100) == "░"
    assert shade(5, 0) == NONE_FREE


@given(st.integers(-20_000, 200_000), st.integers(1, 50_000), st.integers(1, 48))
def test_lease_buckets_are_those_it_overlaps(offset: int, length: int, count: int) -> None:
    step = timedelta(hours=1)
    begin = START + timedelta(seconds=offset)
    end = begin + timedelta(seconds=length)
    expected = [i for i in range(count) if begin < START + (i + 1) * step and START + i * step < end]
    assert list(buckets(START, step, count, begin, end)) == expected


def test_a_short_range_has_no_blank_header_line() -> None:
    cal = calendar({("site", "MASS"): [2, 1, 0]}, 2, timedelta(hours=1))  # 14:00 to 17:00 UTC
    assert render(cal, "GPU_A30", {"MASS": {2}}, UTC) == ["     12-06", "MASS █▓@  2 GPU_A30"]
