"""What the operator commands (``slotbroker admin ...``, ``demo``, ``serve``) share: the database
option, opening it (never creating one unless asked), output as a Rich table or JSON, error exits.

Only these commands act on a database directly; user commands talk to a server (cli/remote.py).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from slotbroker.domain.errors import SlotbrokerError

if TYPE_CHECKING:  # the server's modules load only when an operator command runs
    from slotbroker.bootstrap import Services
    from slotbroker.store.db import Database

# soft_wrap: long lines (tokens, curl commands) stay whole, so they can be copied from the terminal
console = Console(soft_wrap=True)
err_console = Console(stderr=True)

DatabaseUrl = Annotated[
    str,
    typer.Option(
        "--database-url",
        envvar="SLOTBROKER_DATABASE_URL",
        help="SQLAlchemy URL of the database.",
        show_default=True,
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def default_url() -> str:
    from slotbroker.store.db import database_url

    return database_url()


CreateFlag = Annotated[
    bool, typer.Option("--create", help="Create the database file if it is not there (SQLite).")
]


def open_db(url: str, *, migrate_first: bool = True, create: bool = False) -> Database:
    """The database at ``url``, migrated to head; a SQLite file that is not there is an error unless
    ``create`` (a mistyped path must not leave a new empty database, or a ``./var``, behind)."""
    from slotbroker.store import migrate
    from slotbroker.store.db import Database, _sqlite_file

    path = _sqlite_file(url)
    if not create and path is not None and not path.exists():
        raise ValueError(f"no database at {path}; pass --create to make one")
    db = Database(url)
    if migrate_first:
        migrate.upgrade(db.engine)
    return db


def build(url: str, *, migrate_first: bool = True) -> Services:
    """The server's service graph (``bootstrap``) on ``url``, configured from the same ``SLOTBROKER_*``
    settings, so a command and a request behave alike."""
    from slotbroker.bootstrap import build_services
    from slotbroker.config import Settings

    return build_services(Settings(database_url=url), open_db(url, migrate_first=migrate_first))


@contextmanager
def services(url: str) -> Iterator[Services]:
    """``build(url)`` for one command; its find-slot threads and connections closed after it."""
    svc = build(url)
    try:
        yield svc
    finally:
        svc.close()


@contextmanager
def failing_nicely() -> Iterator[None]:
    """Expected errors become a one-line message and exit code 1 (2 for bad input), not a traceback."""
    try:
        yield
    except SlotbrokerError as exc:
        err_console.print(f"[red]error[/red] ({exc.code}): {exc.detail}")
        for f in exc.errors[:20]:
            err_console.print(f"  {f.pointer or '(document)'}: {f.detail}")
        raise typer.Exit(2 if exc.code == "validation_error" else 1) from None
    except (ValueError, OSError) as exc:
        err_console.print(f"[red]error[/red]: {exc}")
        raise typer.Exit(2) from None


def emit_json(data: Any) -> None:
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    elif isinstance(data, list) and data and isinstance(data[0], BaseModel):
        data = [d.model_dump(mode="json") for d in data]
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    t = Table(title=title)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*(str(v) if v is not None else "" for v in r))
    console.print(t)


Formatter = Callable[[Any], None]
