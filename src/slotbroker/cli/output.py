"""One way to print a result in every format ``-o`` offers: table, json, yaml, csv and id.

A command describes its result once as a :class:`Result` (the API objects, the table's columns and
rows, the ids) and :func:`emit` prints it. JSON and YAML are the API's own documents (times in UTC,
as the API sends them); table and CSV show times in the user's zone with the offset; ``id`` prints
bare ids, one a line, for ``$(...)`` and ``xargs`` (like ``sbatch --parsable``).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import BaseModel
from rich.table import Table
from rich.text import Text

from slotbroker.cli.remote import Output, console


def plain(data: Any) -> Any:
    """``data`` as JSON-ready values (pydantic models dumped as the API sends them)."""
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    if isinstance(data, list | tuple):
        return [plain(d) for d in data]
    if isinstance(data, dict):
        return {k: plain(v) for k, v in data.items()}
    return data


@dataclass
class Result:
    """What a command answers: ``data`` for json/yaml, ``columns``/``rows`` for table and csv, ``ids``.

    The first column is the id the next command takes: tables never wrap or cut it."""

    data: Any
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    ids: Sequence[str] = ()
    title: str | None = None
    notes: list[str] = field(default_factory=list)


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def table(result: Result) -> Table:
    t = Table(title=result.title, title_justify="left")
    for i, c in enumerate(result.columns):
        if i == 0:
            width = max([len(c), *(len(_cell(r[0])) for r in result.rows)])
            t.add_column(c, no_wrap=True, min_width=width)
        else:
            t.add_column(c, overflow="fold")
    for r in result.rows:
        t.add_row(*(Text(_cell(v)) for v in r))  # Text: cell values are never read as markup
    return t


def emit(result: Result, output: Output) -> None:
    if output is Output.JSON:
        sys.stdout.write(json.dumps(plain(result.data), indent=2) + "\n")
    elif output is Output.YAML:
        sys.stdout.write(yaml.safe_dump(plain(result.data), sort_keys=False))
    elif output is Output.CSV:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([[_cell(v) for v in r] for r in result.rows])
    elif output is Output.ID:
        for i in result.ids:
            sys.stdout.write(f"{i}\n")
    else:
        console.print(table(result))
        for note in result.notes:
            console.print(note)
