"""``slotbroker admin topology import-slurm``: a topology document from a running Slurm cluster (or from saved
``scontrol show nodes -o`` / ``scontrol show partitions -o`` output), printed or imported.

It lives apart from ``cli/topology.py`` so the Slurm importer is added to that group with one call
(``register``); the parsing is ``importers/slurm.py``, the tool calls the Slurm provisioner's adapter.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
import yaml

from slotbroker.cli.common import CreateFlag, DatabaseUrl, console, failing_nicely, open_services
from slotbroker.importers.slurm import cluster_name, parse_slurm

FileOpt = Annotated[
    Path | None,
    typer.Option(exists=True, dir_okay=False, readable=True, help="Saved output to read instead."),
]


async def _live(conf: str | None) -> tuple[str, str, str | None]:
    from slotbroker.services.planner.provisioners.slurm_cli import SlurmCommands

    tools = SlurmCommands(conf)
    config = await tools.run(["scontrol", "show", "config"])
    return await tools.show_nodes(), await tools.show_partitions(), cluster_name(config)


def import_slurm(
    nodes_file: FileOpt = None,
    partitions_file: FileOpt = None,
    slurm_conf: Annotated[
        str | None, typer.Option(help="slurm.conf of the cluster to ask (default: the tools' own).")
    ] = None,
    region: Annotated[str, typer.Option(help="Name of the region the cluster's site goes under.")] = "slurm",
    site: Annotated[str | None, typer.Option(help="Name of the site (default: the ClusterName).")] = None,
    host_prefix: Annotated[
        str, typer.Option(help="Host names are <prefix><node>; give the slurm provisioner the same prefix.")
    ] = "",
    apply: Annotated[
        bool, typer.Option("--apply", help="Import it into the database instead of printing.")
    ] = False,
    database_url: DatabaseUrl = "sqlite:///./var/slotbroker.db",
    create: CreateFlag = False,
    fmt: Annotated[str, typer.Option("--format", help="yaml or json (when printing)")] = "yaml",
) -> None:
    """Build a topology from `scontrol show nodes/partitions`: nodes as hosts (CPUs, memory, GPUs),
    partitions as aggregates, features as traits. Prints the document unless --apply."""
    if fmt not in ("yaml", "json"):
        raise typer.BadParameter("yaml or json", param_hint="--format")
    with failing_nicely():
        if nodes_file is not None:
            nodes = nodes_file.read_text()
            partitions = partitions_file.read_text() if partitions_file is not None else None
            name = None
        else:
            nodes, partitions, name = asyncio.run(_live(slurm_conf))
        doc = parse_slurm(nodes, partitions, region=region, site=site or name, host_prefix=host_prefix)
        if apply:
            with open_services(database_url, create=create) as svc:
                report = svc.topology.import_(doc)
            console.print(
                f"created {report.created}, updated {report.updated}, unchanged {report.unchanged}; "
                f"calendar generation {report.calendar_generation}"
            )
            return
    data = doc.model_dump(mode="json", exclude_none=True)
    text = json.dumps(data, indent=2) + "\n" if fmt == "json" else yaml.safe_dump(data, sort_keys=False)
    typer.echo(text, nl=False)


def sync_slurm(
    slurm_conf: Annotated[
        str | None, typer.Option(help="slurm.conf of the cluster to ask (default: SLOTBROKER_SLURM_CONF).")
    ] = None,
    host_prefix: Annotated[
        str | None, typer.Option(help="Hosts are <prefix><node> (default: SLOTBROKER_SLURM_HOST_PREFIX).")
    ] = None,
    database_url: DatabaseUrl = "sqlite:///./var/slotbroker.db",
) -> None:
    """Record what Slurm holds outside the broker (drained or down nodes, reservations made with
    scontrol) as booked capacity, and delete sb-* reservations whose lease is over. Run it periodically."""
    import dataclasses

    from slotbroker.bootstrap import build_slurm_drift
    from slotbroker.services.planner.provisioners.slurm_config import SlurmConfig

    with failing_nicely():
        config = SlurmConfig.from_env()
        if slurm_conf is not None:
            config = dataclasses.replace(config, conf=slurm_conf)
        if host_prefix is not None:
            config = dataclasses.replace(config, host_prefix=host_prefix)
        with open_services(database_url) as svc:
            report = asyncio.run(build_slurm_drift(svc, config).sync())
    typer.echo(json.dumps(dataclasses.asdict(report), indent=2))


def register(group: typer.Typer) -> None:
    group.command("import-slurm")(import_slurm)
    group.command("sync-slurm")(sync_slurm)


__all__ = ["import_slurm", "register", "sync_slurm"]
