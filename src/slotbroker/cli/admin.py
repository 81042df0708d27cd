"""``slotbroker admin``: the operator's commands that act on a database directly.

Migrations, token minting, topology import and export, the planner worker, ``serve`` and ``demo``
work before any server runs, so they open the database named by ``--database-url`` /
``SLOTBROKER_DATABASE_URL`` themselves (docs/decisions/0022). A SQLite file that is not there is
created only with ``--create`` (``demo`` creates its own). The server's modules are imported inside
each command, so the CLI loads without them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from slotbroker.cli import server, topology
from slotbroker.cli.common import (
    CreateFlag,
    DatabaseUrl,
    console,
    failing_nicely,
    open_db,
    open_services,
)
from slotbroker.cli.output import Result, emit
from slotbroker.cli.remote import Output, OutputOpt

app = typer.Typer(
    help="Operator commands on a database (no server needed): db, token, topology, worker, serve, demo.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
DEFAULT = "sqlite:///./var/slotbroker.db"


@db_app.command("upgrade")
def db_upgrade(
    database_url: DatabaseUrl = DEFAULT,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
    create: CreateFlag = False,
) -> None:
    """Migrate the database schema up (to head by default)."""
    from slotbroker.store import migrate

    with failing_nicely():
        db = open_db(database_url, migrate_first=False, create=create)
        migrate.upgrade(db.engine, revision)
    console.print(f"database at {migrate.current_revision(db.engine)}")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision, e.g. base.")],
    database_url: DatabaseUrl = DEFAULT,
) -> None:
    """Migrate the database schema down."""
    from slotbroker.store import migrate

    with failing_nicely():
        db = open_db(database_url, migrate_first=False)
        migrate.downgrade(db.engine, revision)
    console.print(f"database at {migrate.current_revision(db.engine)}")


@db_app.command("current")
def db_current(database_url: DatabaseUrl = DEFAULT, output: OutputOpt = Output.TABLE) -> None:
    """Show the current and head revisions."""
    from slotbroker.store import migrate

    with failing_nicely():
        db = open_db(database_url, migrate_first=False)
    current, head = migrate.current_revision(db.engine), migrate.head_revision()
    if output is Output.TABLE:
        console.print(f"current {current}, head {head}")
    else:
        emit(
            Result(
                {"current": current, "head": head}, ("current", "head"), [(current, head)], [str(current)]
            ),
            output,
        )


@token_app.command("create")
def token_create(
    project: Annotated[str, typer.Option(help="Project the token acts for.")],
    role: Annotated[str, typer.Option(help="admin, operator or user.")] = "user",
    name: Annotated[str, typer.Option(help="A label to recognise the token by.")] = "",
    database_url: DatabaseUrl = DEFAULT,
    create: CreateFlag = False,
    output: Annotated[
        Output, typer.Option("--output", "-o", help="id (the bare token, default), table, json, yaml or csv.")
    ] = Output.ID,
) -> None:
    """Create an API token and print it (it is shown only once)."""
    from slotbroker.services.access.tokens import Role

    with failing_nicely():
        chosen = Role(role)
        with open_services(database_url, create=create) as svc:
            secret = svc.tokens.create(project=project, role=chosen, name=name)
    row = (secret, project, chosen.value, name)
    data = {"token": secret, "project": project, "role": chosen.value, "name": name}
    emit(Result(data, ("token", "project", "role", "name"), [row], [secret]), output)


app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")
app.add_typer(topology.app, name="topology")
app.command("worker")(server.worker)
app.command("serve")(server.serve)
app.command("demo")(server.demo)
