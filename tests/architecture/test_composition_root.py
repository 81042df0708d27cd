"""Adapters get their services from the composition root: no CLI, API, MCP or portal module builds a service
itself (imports a service class from ``slotbroker.services`` and calls it); ``bootstrap.build_services``
does, once, so every ``SLOTBROKER_*`` setting reaches every path (docs/architecture.md).

The regression: ``slotbroker admin token create``, ``admin topology import / export / import-slurm``
built ``TokenService`` / ``TopologyService`` on a bare database, and ``admin topology sync-slurm`` its
own ``SlurmDriftSync`` (with a claim service that knew nothing of the booking policy settings)."""

from __future__ import annotations

import ast
import dataclasses
import typing
from pathlib import Path

import slotbroker
from slotbroker.bootstrap import Services

PACKAGE = Path(slotbroker.__file__).parent
ADAPTERS = ("cli", "api", "mcp", "portal")


def service_classes() -> set[str]:
    """The classes the service graph holds, by name (``Services``' field types, the database aside)."""
    hints = typing.get_type_hints(Services)
    named = {getattr(hints[f.name], "__name__", "") for f in dataclasses.fields(Services)}
    return named - {"Database", ""} | {"SlurmDriftSync", "LeaseRehoster"}


def constructions(path: Path, graph: set[str]) -> list[str]:
    """``name (line)`` of each call of a service class imported from ``slotbroker.services``."""
    tree = ast.parse(path.read_text(), str(path))
    imported: dict[str, str] = {}  # local name -> class name
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("slotbroker.services"):
            for alias in node.names:
                if alias.name.endswith("Service") or alias.name in graph:
                    imported[alias.asname or alias.name] = alias.name
    return [
        f"{imported[node.func.id]} (line {node.lineno})"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in imported
    ]


def test_adapters_build_no_service_of_their_own() -> None:
    graph = service_classes()
    assert {"TokenService", "TopologyService", "IvoaService"} <= graph  # the hints were read
    modules = [p for a in ADAPTERS for p in sorted((PACKAGE / a).rglob("*.py"))]
    assert len(modules) > 30, modules
    found = {p.relative_to(PACKAGE).as_posix(): calls for p in modules if (calls := constructions(p, graph))}
    assert not found, f"adapters building services outside bootstrap.build_services: {found}"
