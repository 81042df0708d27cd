"""One way to print a result in every format ``-o`` offers: table, json, yaml, csv and id.

A command describes its result once as a :class:`Result` (the API objects, the table's columns and
rows, the ids) and :func:`emit` prints it. JSON and YAML are the API's own documents (times in UTC,
as the API sends them); table and CSV show times in the user's zone with the offset; ``id`` prints
bare ids, one a line, for ``$(...)`` and ``xargs`` (like ``sbatch --parsable``). A table too wide for
the terminal is printed as cards (the id alone on a line, then the fields), so ids stay whole at 80
columns without squeezing the other columns to a word's width.
"""

from __future__ import annotations

import csv
import json
import sys
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel
from rich.measure import Measurement
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
    vertical: bool = False  # one object (``show``): fields one a line, whatever the width


T = TypeVar("T")


def first(items: Iterable[T], limit: int) -> tuple[list[T], bool]:
    """The first ``limit`` of ``items``, and whether there are more (one more is read to know, so a
    listing never stops at ``limit`` without saying so)."""
    found: list[T] = []
    for item in items:
        if len(found) == limit:
            return found, True
        found.append(item)
    return found, False


def more_note(noun: str, limit: int, narrow: str) -> str:
    """The note under a listing cut at ``limit``: what was shown and how to see the rest."""
    return f"The first {limit} {noun} shown; more match. Raise --limit or narrow with {narrow}."


def host_list(hosts: list[str]) -> str:
    """Hosts of a component's instances for people: ``mich-w2, mich-w3 x3`` (first-seen order). Which
    instance is on which host stays in the json and yaml output."""
    counts: dict[str, int] = {}
    for host in hosts:
        counts[host] = counts.get(host, 0) + 1
    return ", ".join(host if n == 1 else f"{host} x{n}" for host, n in counts.items())


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


TIME_COLUMNS = frozenset({"start", "end", "created", "expires"})


def table(result: Result) -> Table:
    """The id column never wraps; a time keeps its date and clock together (only the offset may go to a
    second line when the terminal is narrow); a column empty in every row is left out."""
    shown = [i for i in range(len(result.columns)) if i == 0 or any(_cell(r[i]) for r in result.rows)]
    t = Table(title=result.title, title_justify="left")
    for i in shown:
        name = result.columns[i]
        if i == 0:
            width = max([len(name), *(len(_cell(r[i])) for r in result.rows)])
            t.add_column(name, no_wrap=True, min_width=width)
        elif name in TIME_COLUMNS:
            t.add_column(name, min_width=len("2026-12-07 09:00"))
        else:
            t.add_column(name, overflow="fold")
    for r in result.rows:
        t.add_row(*(Text(_cell(r[i])) for i in shown))  # Text: cell values are never read as markup
    return t


def cards(result: Result, columns: int) -> list[str]:
    """The narrow-terminal layout: each record's id on a line of its own, then its fields, one a line
    (long values wrapped under themselves), so the id stays whole and no column is one word wide."""
    width = max((len(c) for c in result.columns[1:]), default=0)
    room = max(20, columns - width - 4)
    lines: list[str] = []
    for r in result.rows:
        lines.append(_cell(r[0]))
        for name, value in zip(result.columns[1:], r[1:], strict=True):
            text = [
                part
                for line in _cell(value).splitlines()
                for part in textwrap.wrap(line, room, break_on_hyphens=False) or [""]
            ]
            if not any(text):
                continue
            lines.append(f"  {name:<{width}}  {text[0]}")
            lines += [f"  {'':<{width}}  {more}" for more in text[1:]]
    return lines


def fits(t: Table) -> bool:
    """Whether ``t`` shows at its natural width, no cell wrapped, in this terminal."""
    unbounded = console.options.update(max_width=100_000)  # Measurement clamps to the width it is given
    return Measurement.get(console, unbounded, t).maximum <= console.width


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
        t = table(result)
        if not result.vertical and (fits(t) or not result.ids):  # without ids, cells may wrap
            console.print(t)
        else:
            if result.title:
                console.print(Text(result.title))
            for line in cards(result, console.width):
                console.print(Text(line))
        for note in result.notes:
            console.print(note)
