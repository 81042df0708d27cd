"""``slotbroker find-slot`` and ``slotbroker calendar``: search and inspect the calendar in the database.

Like every command they act on the database directly (docs/decisions/0004), through the same
``FindSlotService`` the API uses (``bootstrap.build_services``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from slotbroker.cli.common import (
    DatabaseUrl,
    JsonFlag,
    console,
    emit_json,
    err_console,
    failing_nicely,
    services,
)
from slotbroker.domain.errors import FieldError, ValidationFailed
from slotbroker.domain.time import to_datetime
from slotbroker.engine import Bucket
from slotbroker.wire.find_slot import FindSlotResult

DEFAULT_URL = "sqlite:///./var/slotbroker.db"
DEFAULT_RANGE = timedelta(days=7)

ComponentOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--component",
        "-c",
        help="NAME:COUNT:CLASS=N,CLASS=N[@SITE], e.g. gpu:1:VCPU=8,MEMORY_MB=32768,GPU_A30=1@STAR "
        "(repeatable).",
    ),
]
LinkOpt = Annotated[list[str] | None, typer.Option("--link", "-l", help="A:B:GBPS between components.")]


def parse_component(spec: str, index: int) -> dict[str, Any]:
    """``NAME:COUNT:CLASS=N,...[@SITE]`` -> a request component (ValidationFailed naming the option)."""
    where = f"--component[{index}]"
    body, _, site = spec.partition("@")
    parts = body.split(":")
    if len(parts) != 3 or not parts[0]:
        raise ValidationFailed(
            f"{where}: expected NAME:COUNT:CLASS=N,...[@SITE]",
            [FieldError(where, f"cannot read {spec!r}")],
        )
    name, count, amounts = parts
    resources: dict[str, int] = {}
    for item in filter(None, amounts.split(",")):
        rc, eq, amount = item.partition("=")
        if not eq or not amount.strip().isdigit():
            raise ValidationFailed(
                f"{where}: {item!r} is not CLASS=AMOUNT", [FieldError(where, f"cannot read {item!r}")]
            )
        resources[rc.strip()] = int(amount)
    if not count.isdigit():
        raise ValidationFailed(f"{where}: COUNT {count!r} is not a number", [FieldError(where, count)])
    comp: dict[str, Any] = {"name": name, "count": int(count), "resources": resources}
    if site:
        comp["site"] = site
    return comp


def parse_link(spec: str, index: int) -> dict[str, Any]:
    where = f"--link[{index}]"
    parts = spec.split(":")
    if len(parts) != 3 or not parts[2].isdigit():
        raise ValidationFailed(f"{where}: expected A:B:GBPS", [FieldError(where, f"cannot read {spec!r}")])
    return {"a": parts[0], "b": parts[1], "bandwidth_gbps": int(parts[2])}


def build_request(
    file: Path | None,
    components: list[str],
    links: list[str],
    start: str | None,
    end: str | None,
    duration: str | None,
    limit: int | None,
    policy: str | None,
) -> dict[str, Any]:
    """The request document: the file's, or one made of the flags; flags override the file's times."""
    if file is not None and components:
        raise ValidationFailed(
            "give --file or --component, not both", [FieldError("--component", "with --file")]
        )
    if file is not None:
        doc = yaml.safe_load(file.read_text())  # YAML is a superset of JSON
        if not isinstance(doc, dict):
            raise ValidationFailed(
                f"{file} does not hold a request object", [FieldError("", "not an object")]
            )
    elif components:
        doc = {"components": [parse_component(c, i) for i, c in enumerate(components)]}
        first = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        doc["earliest_start"] = first.isoformat()
        doc["latest_end"] = (first + DEFAULT_RANGE).isoformat()
    else:
        raise ValidationFailed(
            "say what to place: --file REQUEST or --component ...", [FieldError("--component", "missing")]
        )
    if links:
        doc["links"] = [*doc.get("links", []), *(parse_link(lk, i) for i, lk in enumerate(links))]
    if start is not None:
        doc.pop("start_within", None)
        doc["earliest_start"] = start
        if end is None and "latest_end" not in doc:
            doc["latest_end"] = (datetime.fromisoformat(start) + DEFAULT_RANGE).isoformat()
    if end is not None:
        doc["latest_end"] = end
    if duration is not None:
        doc["duration"] = int(duration) if duration.isdigit() else duration
        doc.pop("min_duration", None)
        doc.pop("max_duration", None)
    if limit is not None:
        doc["limit"] = limit
    if policy is not None:
        doc["policy"] = policy
    return dict(doc)


def _when(d: datetime) -> str:
    return d.strftime("%Y-%m-%d %H:%M")


def print_result(result: FindSlotResult) -> None:
    from rich.table import Table

    t = Table(title=f"find-slot: {len(result.windows)} window(s)")
    for column in ("#", "start (UTC)", "end (UTC)", "placement", "routes", "ports"):
        t.add_column(column)
    for i, w in enumerate(result.windows, 1):
        placement = "\n".join(f"{c} @ {w.sites[c]}: {', '.join(hosts)}" for c, hosts in w.placement.items())
        routes = "\n".join(
            f"{r.a}-{r.b}: {' > '.join(r.links) or '(same site)'} ({r.latency_ms:.2f} ms)" for r in w.routes
        )
        ports = "\n".join(f"{p.site}/{p.port} -> {p.component}: VLAN {p.vlans}" for p in w.ports)
        t.add_row(str(i), _when(w.start), _when(w.end), placement, routes, ports)
    console.print(t)


def print_explanation(result: FindSlotResult) -> None:
    err_console.print(
        f"[yellow]nothing fits[/yellow] between {_when(result.search_start)} and {_when(result.search_end)}"
    )
    if result.explanation is None:
        return
    for b in result.explanation.blockers:
        what = ", ".join(
            f"{k} {v}"
            for k, v in (
                ("component", b.component),
                ("class", b.resource_class),
                ("link", b.link),
                ("port", b.port),
            )
            if v
        )
        relaxed = f"; earliest if relaxed {_when(b.earliest_if_relaxed)}" if b.earliest_if_relaxed else ""
        err_console.print(f"  {b.reason}: {b.detail}" + (f" ({what})" if what else "") + relaxed)
    if result.explanation.earliest_after_range is not None:
        err_console.print(
            f"  earliest start after the range: {_when(result.explanation.earliest_after_range)}"
        )


def find_slot(
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", exists=True, dir_okay=False, help="Request document (YAML or JSON)."),
    ] = None,
    component: ComponentOpt = None,
    link: LinkOpt = None,
    start: Annotated[str | None, typer.Option(help="Earliest start, ISO 8601 with offset.")] = None,
    end: Annotated[str | None, typer.Option(help="Latest end, ISO 8601 with offset.")] = None,
    duration: Annotated[str | None, typer.Option(help="ISO 8601 duration (PT4H) or seconds.")] = None,
    limit: Annotated[int | None, typer.Option(help="How many windows (1-50).")] = None,
    policy: Annotated[
        str | None, typer.Option(help="earliest, first_fit, best_fit, spread or latency.")
    ] = None,
    database_url: DatabaseUrl = DEFAULT_URL,
    as_json: JsonFlag = False,
) -> None:
    """Find windows where a request fits; exit code 1 (and why) when nothing does."""
    with failing_nicely():
        doc = build_request(file, component or [], link or [], start, end, duration, limit, policy)
        with services(database_url) as svc:
            result = svc.find_slot.find(doc)
    if as_json:
        emit_json(result)
    elif result.windows:
        print_result(result)
    if not result.windows:
        print_explanation(result)
        raise typer.Exit(1)


def calendar(
    start: Annotated[str, typer.Option(help="ISO 8601 with offset.")],
    end: Annotated[str, typer.Option(help="ISO 8601 with offset.")],
    resolution: Annotated[Bucket, typer.Option(help="Bucket size.")] = Bucket.DAY,
    kind: Annotated[
        list[str] | None, typer.Option(help="host, site, link or facility_port (repeatable).")
    ] = None,
    name: Annotated[list[str] | None, typer.Option(help="Only these providers (repeatable).")] = None,
    resource_class: Annotated[list[str] | None, typer.Option(help="Only these classes (repeatable).")] = None,
    database_url: DatabaseUrl = DEFAULT_URL,
    as_json: JsonFlag = False,
) -> None:
    """Capacity and peak usage per provider and class over time."""
    with failing_nicely():
        start_s, end_s = _instant(start, "--start"), _instant(end, "--end")
        kinds = frozenset(kind or ["host", "site", "link", "facility_port"])
        with services(database_url) as svc:
            view = svc.find_slot.calendar_view(start_s, end_s, resolution, kinds)
    rows = [
        r
        for r in view.rows
        if (not name or r.name in name) and (not resource_class or r.resource_class in resource_class)
    ]
    if as_json:
        emit_json(
            {
                "resolution": resolution.value,
                "bucket_s": view.bucket_s,
                "starts": [to_datetime(s).isoformat() for s in view.starts],
                "rows": [
                    {
                        "kind": r.kind,
                        "name": r.name,
                        "resource_class": r.resource_class,
                        "capacity": r.capacity,
                        "used": list(r.used),
                        "free": list(r.free),
                    }
                    for r in rows
                ],
            }
        )
        return
    from rich.table import Table

    t = Table(title=f"calendar by {resolution.value}: used / capacity (peak per bucket)")
    for column in ("kind", "name", "class", *(_when(to_datetime(s)) for s in view.starts)):
        t.add_column(column)
    for r in rows:
        t.add_row(r.kind, r.name, r.resource_class, *(f"{u}/{r.capacity}" for u in r.used))
    console.print(t)


def _instant(text: str, option: str) -> int:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(
            f"{option}: {text!r} is not an ISO 8601 date-time", [FieldError(option, text)]
        ) from None
    if value.tzinfo is None:
        raise ValidationFailed(f"{option}: {text!r} needs a UTC offset", [FieldError(option, text)])
    return int(value.timestamp())
