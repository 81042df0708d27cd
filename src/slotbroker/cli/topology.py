"""``slotbroker admin topology``: import, export and the real-data importers, on a database.

Through a server, an admin token does the same with the client (``Client.import_topology``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
import yaml

from slotbroker.cli.common import CreateFlag, DatabaseUrl, console, failing_nicely, open_services
from slotbroker.cli.output import Result, emit
from slotbroker.cli.remote import Output, OutputOpt
from slotbroker.domain.topology import Topology
from slotbroker.wire.providers import ImportReport

app = typer.Typer(help="Import and export whole topologies.", no_args_is_help=True, rich_markup_mode=None)
PathArg = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="File to read.")]
DEFAULT_URL = "sqlite:///./var/slotbroker.db"


def _report(report: ImportReport, output: Output) -> None:
    if output is Output.TABLE:
        console.print(
            f"created {report.created}, updated {report.updated}, unchanged {report.unchanged}, "
            f"deleted {report.deleted}; calendar generation {report.calendar_generation}"
        )
        return
    counts = (report.created, report.updated, report.unchanged, report.deleted, report.calendar_generation)
    columns = ("created", "updated", "unchanged", "deleted", "calendar_generation")
    emit(Result(report, columns, [counts], [str(report.calendar_generation)]), output)


def _import(doc: Topology, url: str, prune: bool, output: Output, create: bool = False) -> None:

    with failing_nicely(), open_services(url, create=create) as svc:
        report = svc.topology.import_(doc, prune=prune)
    _report(report, output)


def _read_text(path: Path) -> str:
    import gzip

    raw = path.read_bytes()
    return (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode()


@app.command("import")
def import_(
    path: PathArg,
    database_url: DatabaseUrl = DEFAULT_URL,
    prune: Annotated[bool, typer.Option(help="Delete what the document omits.")] = False,
    create: CreateFlag = False,
    output: OutputOpt = Output.TABLE,
) -> None:
    """Import a topology document (YAML or JSON), all or nothing."""
    with failing_nicely():
        data = yaml.safe_load(_read_text(path))
        doc = Topology.model_validate(data)
    _import(doc, database_url, prune, output, create)


@app.command("export")
def export(
    database_url: DatabaseUrl = DEFAULT_URL,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="File to write; default stdout.")] = None,
    output: Annotated[Output, typer.Option("--output", "-o", help="yaml or json.")] = Output.YAML,
) -> None:
    """Export the whole topology; importing it again changes nothing."""

    if output not in (Output.YAML, Output.JSON):
        raise typer.BadParameter("yaml or json", param_hint="--output")
    with failing_nicely(), open_services(database_url) as svc:
        doc = svc.topology.export()
    data = doc.model_dump(mode="json", exclude_none=True)
    text = (
        json.dumps(data, indent=2) + "\n" if output is Output.JSON else yaml.safe_dump(data, sort_keys=False)
    )
    if file:
        file.write_text(text)
    else:
        typer.echo(text, nl=False)


@app.command("import-alibaba")
def import_alibaba(
    path: PathArg, database_url: DatabaseUrl = DEFAULT_URL, output: OutputOpt = Output.TABLE
) -> None:
    """Import the Alibaba GPU cluster node list (openb_node_list_all_node.csv)."""
    from slotbroker.importers.alibaba import parse_alibaba_nodes

    with failing_nicely():
        doc = parse_alibaba_nodes(_read_text(path))
    _import(doc, database_url, False, output)


@app.command("import-machines")
def import_machines(
    path: PathArg,
    database_url: DatabaseUrl = DEFAULT_URL,
    region: Annotated[str, typer.Option(help="Name of the region the clusters go under.")] = "swf",
    output: OutputOpt = Output.TABLE,
) -> None:
    """Import an SWF `.machines` cluster list (Alea / AleaNG format)."""
    from slotbroker.importers.swf_machines import parse_swf_machines

    with failing_nicely():
        doc = parse_swf_machines(_read_text(path), region=region)
    _import(doc, database_url, False, output)
