"""What the operator commands (``slotbroker admin ...``, ``demo``, ``serve``) share: the database
option and opening it (never creating one unless asked); errors exit as every command's do.

Only these commands act on a database directly; user commands talk to a server (cli/remote.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from slotbroker.cli.remote import failing_nicely

if TYPE_CHECKING:  # the server's modules load only when an operator command runs
    from slotbroker.bootstrap import Services
    from slotbroker.store.db import Database

# soft_wrap: long lines (tokens, curl commands) stay whole, so they can be copied from the terminal
console = Console(soft_wrap=True)
# An error stays one line however it is shown (piped, Rich wraps at 80 columns): grep and logs find it.
err_console = Console(stderr=True, soft_wrap=True)

DatabaseUrl = Annotated[
    str,
    typer.Option(
        "--database-url",
        envvar="SLOTBROKER_DATABASE_URL",
        help="SQLAlchemy URL of the database.",
        show_default=True,
    ),
]


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


@contextmanager
def open_services(url: str, *, create: bool = False) -> Iterator[Services]:
    """The service graph (``bootstrap.build_services``, from ``SLOTBROKER_*`` as the server reads them)
    on the database at ``url``, opened as ``open_db`` opens it; closed when the command is done. Operator
    commands take their services from here, never build one themselves (tests/architecture)."""
    from slotbroker.bootstrap import build_services
    from slotbroker.config import Settings

    services = build_services(Settings(database_url=url), open_db(url, create=create))
    try:
        yield services
    finally:
        services.close()


__all__ = [
    "CreateFlag",
    "DatabaseUrl",
    "console",
    "err_console",
    "failing_nicely",
    "open_db",
    "open_services",
]
