"""``slotbroker find-slot``: where and when a request fits, asked of the server.

The request is a document (``--file``) or made of flags (``-c NAME:COUNT:CLASS=N,...[@SITE]``,
``-l A:B:GBPS``); times and durations take the human forms of ``domain/humantime.py``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from slotbroker.cli import remote
from slotbroker.cli.output import Result, emit, host_list
from slotbroker.cli.remote import Output, Remote, err_console
from slotbroker.domain.errors import FieldError, ValidationFailed
from slotbroker.domain.humantime import INSTANT_FORMS, duration_seconds
from slotbroker.domain.request import Policy
from slotbroker.wire.find_slot import FindSlotJob, FindSlotResult

DEFAULT_RANGE = timedelta(days=7)

ComponentOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--component",
        "-c",
        metavar="SPEC",
        help="NAME:COUNT:CLASS=N,CLASS=N[@SITE], e.g. gpu:1:VCPU=8,GPU_A30=1@STAR (repeatable).",
    ),
]
LinkOpt = Annotated[
    list[str] | None, typer.Option("--link", "-l", metavar="A:B:GBPS", help="A:B:GBPS between components.")
]
FileOpt = Annotated[
    Path | None,
    typer.Option("--file", "-f", exists=True, dir_okay=False, help="Request document (YAML or JSON)."),
]
StartOpt = Annotated[str | None, typer.Option(metavar="WHEN", help=f"Earliest start: {INSTANT_FORMS}.")]
EndOpt = Annotated[
    str | None, typer.Option(metavar="WHEN", help="Latest end (same forms; default start + 7 days).")
]
DurationOpt = Annotated[
    str | None, typer.Option(metavar="DURATION", help="How long: 8h, 90m, 1d12h, 8:00:00, PT8H.")
]


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
    ctx: Remote,
    file: Path | None,
    components: list[str],
    links: list[str],
    start: str | None,
    end: str | None,
    duration: str | None,
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
        if start is None:
            start = "now"
    else:
        raise ValidationFailed(
            "say what to place: --file REQUEST or --component ...", [FieldError("--component", "missing")]
        )
    if links:
        doc["links"] = [*doc.get("links", []), *(parse_link(lk, i) for i, lk in enumerate(links))]
    first: datetime | None = None
    if start is not None:
        first = ctx.instant(start, "--start")
        doc.pop("start_within", None)
        doc["earliest_start"] = first.isoformat()
    if end is not None:
        doc["latest_end"] = ctx.instant(end, "--end").isoformat()
    elif first is not None and "latest_end" not in doc:
        doc["latest_end"] = (first + DEFAULT_RANGE).isoformat()
    if duration is not None:
        doc["duration"] = duration_seconds(duration, field="--duration")
        doc.pop("min_duration", None)
        doc.pop("max_duration", None)
    return dict(doc)


def windows(ctx: Remote, result: FindSlotResult) -> Result:
    rows = []
    for i, w in enumerate(result.windows, 1):
        placement = "\n".join(f"{c} @ {w.sites[c]}: {host_list(hosts)}" for c, hosts in w.placement.items())
        routes = "\n".join(
            f"{r.a}-{r.b}: {' > '.join(r.links) or '(same site)'} ({r.latency_ms:.2f} ms)" for r in w.routes
        )
        ports = "\n".join(f"{p.site}/{p.port} -> {p.component}: VLAN {p.vlans}" for p in w.ports)
        rows.append((i, ctx.when(w.start), ctx.when(w.end), placement, routes, ports))
    return Result(
        data=result,
        columns=("#", "start", "end", "placement", "routes", "ports"),
        rows=rows,
        ids=[w.allocation_request for w in result.windows if w.allocation_request],
        title=f"find-slot: {len(result.windows)} window(s)",
    )


def print_explanation(ctx: Remote, result: FindSlotResult) -> None:
    """Why nothing fits, on stderr (ISO times in the user's zone, never epoch seconds)."""
    err_console.print(
        f"nothing fits between {ctx.when(result.search_start)} and {ctx.when(result.search_end)}",
        markup=False,
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
        relaxed = f"; earliest if relaxed {ctx.when(b.earliest_if_relaxed)}" if b.earliest_if_relaxed else ""
        err_console.print(
            f"  {b.reason}: {b.detail}" + (f" ({what})" if what else "") + relaxed, markup=False
        )
    if result.explanation.earliest_after_range is not None:
        err_console.print(
            f"  earliest start after the range: {ctx.when(result.explanation.earliest_after_range)}",
            markup=False,
        )


@remote.command
def find_slot(
    ctx: Remote,
    file: FileOpt = None,
    component: ComponentOpt = None,
    link: LinkOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    duration: DurationOpt = None,
    limit: Annotated[int | None, typer.Option(help="How many windows (1-50).")] = None,
    policy: Annotated[str | None, typer.Option(help=f"Placement policy: {', '.join(Policy)}.")] = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for a search the server runs later.")] = 120.0,
    explain: Annotated[
        bool, typer.Option("--explain/--no-explain", help="Say why when nothing fits (costs more searches).")
    ] = True,
) -> None:
    """Find windows where a request fits; exit code 1 (and why, on stderr) when nothing does."""
    doc = build_request(ctx, file, component or [], link or [], start, end, duration)
    if limit is not None:
        doc["limit"] = limit
    if policy is not None:
        doc["policy"] = policy
    if not explain:
        doc["explain"] = False
    answer = ctx.client.find_slot(doc)
    if isinstance(answer, FindSlotJob):
        answer = ctx.client.wait_find_slot(answer, timeout=wait)
        if answer.result is None:
            raise ValidationFailed(f"find-slot job {answer.id} failed: {answer.error}", [])
        answer = answer.result
    if answer.windows or ctx.output is not Output.TABLE:
        emit(windows(ctx, answer), ctx.output)
    if not answer.windows:
        print_explanation(ctx, answer)
        raise typer.Exit(1)
