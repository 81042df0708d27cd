"""``slotbroker calendar`` and ``slotbroker sites``: free capacity in the terminal, from the public API.

The heat map has a row per site and a column per time bucket; each cell shades how much of the chosen
class is free there (the peak use in the bucket counts), and ``@`` marks buckets where one of your
leases holds something at that site. :func:`render` is pure, so a golden test pins the picture.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, tzinfo
from typing import Annotated

import typer

from slotbroker.cli import remote
from slotbroker.cli.output import Result, emit
from slotbroker.cli.remote import Output, Remote, console
from slotbroker.domain.errors import FieldError, ValidationFailed
from slotbroker.wire.calendar import CalendarResponse

SHADES = (("█", 0.75), ("▓", 0.5), ("▒", 0.25), ("░", 0.0))
NONE_FREE = "·"
MINE = "@"
LEGEND = f"free: █ 75%+  ▓ 50%+  ▒ 25%+  ░ some  {NONE_FREE} none   {MINE} your lease"


def shade(free: int, capacity: int) -> str:
    if capacity <= 0 or free <= 0:
        return NONE_FREE
    share = free / capacity
    return next(glyph for glyph, floor in SHADES if share >= floor)


def render(cal: CalendarResponse, resource_class: str, mine: Mapping[str, set[int]], tz: tzinfo) -> list[str]:
    """The heat map's lines: a header of bucket labels, then one line per site of ``resource_class``."""
    rows = sorted(
        (r for r in cal.rows if r.kind == "site" and r.resource_class == resource_class and r.capacity > 0),
        key=lambda r: r.name,
    )
    width = max([4, *(len(r.name) for r in rows)])
    hourly = cal.bucket_s < 86400
    labels = [s.astimezone(tz) for s in cal.starts]
    days = _marks(labels, lambda i, t: i == 0 or (t.hour == 0 if hourly else i % 7 == 0), "%m-%d")
    lines = [f"{'':<{width}} {days}".rstrip()]
    if hourly:
        hours = _marks(labels, lambda i, t: t.hour % 6 == 0, "%H")
        if hours.strip():  # a short range may have no 6-hour mark to show
            lines.append(f"{'':<{width}} {hours}".rstrip())
    for r in rows:
        cells = [
            MINE if i in mine.get(r.name, set()) else shade(free, r.capacity) for i, free in enumerate(r.free)
        ]
        lines.append(f"{r.name:<{width}} {''.join(cells)}  {r.capacity} {resource_class}")
    return lines


def _marks(labels: list[datetime], where: Callable[[int, datetime], bool], fmt: str) -> str:
    """A header line: ``fmt`` of the bucket's start where ``where`` says, when it does not overlap the
    previous label; only the first label may run past the last column (a range of a few buckets)."""
    line = [" "] * len(labels)
    for i, t in enumerate(labels):
        text = t.strftime(fmt)
        fits = i == 0 or i + len(text) <= len(labels)
        if where(i, t) and fits and all(c == " " for c in line[max(0, i - 1) : i + len(text)]):
            line[i : i + len(text)] = list(text)
    return "".join(line)


def _floor(t: datetime, hourly: bool) -> datetime:
    t = t.replace(minute=0, second=0, microsecond=0)
    return t if hourly else t.replace(hour=0)


def buckets(start: datetime, step: timedelta, count: int, begin: datetime, end: datetime) -> range:
    """The indexes of the ``count`` buckets of ``step`` from ``start`` that ``[begin, end)`` overlaps."""
    first = max(0, math.floor((begin - start) / step))
    last = min(count, math.ceil((end - start) / step))
    return range(first, max(first, last))


def _my_cells(
    ctx: Remote, cal: CalendarResponse, resource_class: str, project: str | None
) -> dict[str, set[int]]:
    """Site name -> bucket indexes where one of the caller's leases holds ``resource_class`` there."""
    if not cal.starts:
        return {}
    start, step = cal.starts[0], timedelta(seconds=cal.bucket_s)
    end = cal.starts[-1] + step
    held = [
        item
        for lease in ctx.client.iter_leases(
            status=["PENDING", "ACTIVE"], project=project, start=start, end=end, page_size=500
        )
        for item in lease.items
        if item.resource_class == resource_class
    ]
    if not held:
        return {}
    site_names = {p.uuid: p.name for p in ctx.client.iter_providers(kind=["site"], page_size=1000)}
    site_of = {
        p.uuid: site_names[p.parent_uuid]
        for p in ctx.client.iter_providers(kind=["host"], page_size=1000)
        if p.parent_uuid in site_names
    }
    marks: dict[str, set[int]] = {}
    for item in held:
        if item.provider_uuid in site_of:
            cells = buckets(start, step, len(cal.starts), item.start, item.end)
            marks.setdefault(site_of[item.provider_uuid], set()).update(cells)
    return marks


@remote.command
def calendar(
    ctx: Remote,
    resource_class: Annotated[
        str, typer.Option("--class", "-r", help="The class to map, e.g. GPU_A30.")
    ] = "VCPU",
    start: Annotated[str, typer.Option(help="From (now, tomorrow, 2026-12-07 ...).")] = "now",
    end: Annotated[str, typer.Option(help="Until (default: 2 days after the start, 7 by day).")] = "",
    by: Annotated[str, typer.Option("--by", help="hour or day per column.")] = "hour",
    project: Annotated[
        str | None, typer.Option("--project", "-p", help="Admins: mark this project's leases (default all).")
    ] = None,
) -> None:
    """A heat map of free capacity of one class: sites as rows, time as columns, your leases marked."""
    if by not in ("hour", "day"):
        raise ValidationFailed(f"--by: {by!r} is not hour or day", [FieldError("--by", by)])
    hourly = by == "hour"
    first = _floor(ctx.instant(start, "--start"), hourly)
    last = ctx.instant(end, "--end") if end else first + timedelta(days=2 if hourly else 7)
    cal = ctx.client.calendar(
        first, last, resolution="hour" if hourly else "day", kind=["site"], resource_class=[resource_class]
    )
    if ctx.output is not Output.TABLE:
        rows = [(r.name, r.resource_class, r.capacity, " ".join(map(str, r.free))) for r in cal.rows]
        emit(
            Result(cal, ("site", "class", "capacity", "free per bucket"), rows, [r.name for r in cal.rows]),
            ctx.output,
        )
        return
    console.print(
        f"free {resource_class} from {ctx.when(first)}, one column per {'hour' if hourly else 'day'}"
    )
    for line in render(cal, resource_class, _my_cells(ctx, cal, resource_class, project), ctx.tz):
        console.print(line)
    console.print(LEGEND)


@remote.command
def sites(ctx: Remote) -> None:
    """What each site has per class and how much of it is free now (GET /v1/sites)."""
    got = ctx.client.list_sites()
    rows = [
        (
            site.name,
            site.region or "",
            site.hosts,
            "\n".join(
                f"{c.resource_class} {c.free}/{c.capacity} free (largest on a host {c.largest_free})"
                for c in site.classes
            ),
        )
        for site in got.items
    ]
    emit(
        Result(got, ("site", "region", "hosts", "free now / capacity"), rows, [s.name for s in got.items]),
        ctx.output,
    )
