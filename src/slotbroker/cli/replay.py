"""``slotbroker replay TRACE``: replay a workload trace and report how each policy schedules it
(docs/replay.md). Everything runs in-process on a simulated clock; nothing is booked on your database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from slotbroker.cli.common import console, err_console

PUBLISHED = "predictsim_easy_metrics.tsv"
ALIBABA_NODES = "alibaba_openb_node_list_all_node.csv"

TraceArg = Annotated[
    Path,
    typer.Argument(
        exists=True,
        dir_okay=False,
        readable=True,
        help="An SWF log (.swf or .swf.gz) or the Alibaba pod list (alibaba_openb_pod_list_default.csv.gz).",
    ),
]


def replay(
    trace: TraceArg,
    policy: Annotated[
        list[str] | None,
        typer.Option(
            "--policy",
            "-p",
            help="Policy to run, repeatable (default all): conservative, conservative_compact, easy, "
            "easy_sjbf, priority; for Alibaba pods first_fit, best_fit, spread.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
    html: Annotated[Path | None, typer.Option(help="Write the HTML report with plots here.")] = None,
    plots: Annotated[
        Path | None, typer.Option(file_okay=False, help="Also write the three plots as SVG files here.")
    ] = None,
    capacity: Annotated[
        int | None, typer.Option(min=1, help="Processors of the machine (default: the SWF header's).")
    ] = None,
    service_prefix: Annotated[
        int,
        typer.Option(
            min=0,
            help="Also replay the first N jobs through the real booking services and compare (slow: "
            "~5-25 ms a job).",
        ),
    ] = 0,
    placement: Annotated[
        str, typer.Option(help="The engine's placement policy for --service-prefix (least_gap, earliest...).")
    ] = "least_gap",
    service_policy: Annotated[
        str,
        typer.Option(
            help="What the services replay with --service-prefix: conservative, conservative_compact "
            "(the broker compacts the waiting leases on every early end), easy or priority."
        ),
    ] = "conservative",
    nodes: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="Alibaba node list (default: beside TRACE)."),
    ] = None,
    published: Annotated[
        Path | None, typer.Option(help=f"The published baseline table (default: {PUBLISHED} beside TRACE).")
    ] = None,
) -> None:
    """Replay TRACE under each policy: wait, bounded slowdown, utilisation, audit violations, wall time."""
    if trace.name.endswith((".csv", ".csv.gz")):
        _alibaba(trace, nodes or trace.with_name(ALIBABA_NODES), policy, as_json)
        return
    from slotbroker.replay.policies import POLICIES
    from slotbroker.replay.published import baseline_for
    from slotbroker.replay.report import render_html
    from slotbroker.replay.runner import replay_trace, result_json
    from slotbroker.replay.trace import read_swf

    chosen = policy or list(POLICIES)
    unknown = [p for p in chosen if p not in POLICIES]
    if unknown:
        raise typer.BadParameter(
            f"unknown policy {', '.join(unknown)}; known: {', '.join(POLICIES)}", param_hint="--policy"
        )
    try:
        data = read_swf(trace, capacity=capacity)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="TRACE") from None
    if not data.jobs:
        raise typer.BadParameter(
            f"no job is left after the filter ({data.dropped} dropped)", param_hint="TRACE"
        )
    results = _with_progress(data, chosen, replay_trace)
    baseline = baseline_for(data.name, published or trace.with_name(PUBLISHED))
    doc = result_json(data, results, baseline)
    extra = ""
    if service_prefix:
        from slotbroker.domain.request import Policy

        if placement not in {p.value for p in Policy}:
            known = ", ".join(p.value for p in Policy)
            raise typer.BadParameter(
                f"unknown placement {placement}; known: {known}", param_hint="--placement"
            )
        from slotbroker.replay.compare import compare_service_path
        from slotbroker.replay.service_path import SERVICE_POLICIES, NoWindow

        if service_policy not in SERVICE_POLICIES:
            known = ", ".join(SERVICE_POLICIES)
            raise typer.BadParameter(f"the services replay {known}", param_hint="--service-policy")

        err_console.print(f"service path: replaying the first {service_prefix} jobs through the services...")
        try:
            doc["service_path"] = compare_service_path(
                data, service_prefix, placement=placement, policy=service_policy
            )
        except NoWindow as exc:
            err_console.print(f"service path stopped: {exc}")
            raise typer.Exit(1) from None
        extra = f"<h2>Service path</h2><pre>{json.dumps(doc['service_path'], indent=1)}</pre>"
    if html is not None:
        html.write_text(render_html(doc, results, extra), encoding="utf-8")
    if plots is not None:
        from slotbroker.replay.report import charts

        plots.mkdir(parents=True, exist_ok=True)
        for stem, svg in charts(results).items():
            (plots / f"{stem}.svg").write_text(svg, encoding="utf-8")
    if as_json:
        print(json.dumps(doc))
        return
    _print_table(doc)
    if "service_path" in doc:
        console.print(doc["service_path"])


def _with_progress(data: Any, chosen: list[str], replay_trace: Any) -> Any:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} jobs"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        tasks = {name: bar.add_task(name, total=len(data.jobs)) for name in chosen}
        return replay_trace(data, chosen, progress=lambda name, n: bar.update(tasks[name], completed=n))


def _print_table(doc: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"{doc['trace']}: {doc['jobs']} jobs on {doc['capacity']} processors")
    cols = ["avg_bounded_slowdown", "mean_wait_s", "wait_p90_s", "utilization", "violations", "wall_s"]
    for c in ["policy", *cols]:
        table.add_column(c, justify="right")
    for name, figures in doc["policies"].items():
        table.add_row(name, *(str(figures[c]) for c in cols))
    console.print(table)
    for name, value in (doc.get("published") or {}).items():
        console.print(f"published {name}: avg bounded slowdown {value}")


def _alibaba(pods_path: Path, nodes_path: Path, policy: list[str] | None, as_json: bool) -> None:
    from slotbroker.replay.alibaba import POLICIES, read_nodes, read_pods, replay_pods, summarise_pods

    chosen = policy or list(POLICIES)
    unknown = [p for p in chosen if p not in POLICIES]
    if unknown:
        raise typer.BadParameter(
            f"unknown policy {', '.join(unknown)}; known: {', '.join(POLICIES)}", param_hint="--policy"
        )
    if not nodes_path.exists():
        raise typer.BadParameter(f"no node list at {nodes_path}", param_hint="--nodes")
    try:
        node_list, pods = read_nodes(nodes_path), read_pods(pods_path)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="TRACE") from None
    doc: dict[str, Any] = {"trace": pods_path.name.split(".")[0], "jobs": len(pods), "nodes": len(node_list)}
    for mode, keep_all in (("policies", False), ("all_at_once", True)):
        doc[mode] = {p: summarise_pods(replay_pods(node_list, pods, p, keep_all=keep_all)) for p in chosen}
    if as_json:
        print(json.dumps(doc))
    else:
        console.print_json(json.dumps(doc))
