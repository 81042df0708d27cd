"""``slotbroker db``, ``token`` and ``providers``: administration of a database."""

from __future__ import annotations

from typing import Annotated

import typer

from slotbroker.cli.common import DatabaseUrl, JsonFlag, console, emit_json, failing_nicely, open_db, table
from slotbroker.domain.providers import ProviderKind
from slotbroker.services.access.tokens import Role, TokenService
from slotbroker.services.inventory.service import InventoryService
from slotbroker.store import migrate

db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
providers_app = typer.Typer(help="Browse providers.", no_args_is_help=True)
DEFAULT = "sqlite:///./var/slotbroker.db"


@db_app.command("upgrade")
def db_upgrade(
    database_url: DatabaseUrl = DEFAULT,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Migrate the database schema up (to head by default)."""
    db = open_db(database_url, migrate_first=False)
    migrate.upgrade(db.engine, revision)
    console.print(f"database at {migrate.current_revision(db.engine)}")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision, e.g. base.")],
    database_url: DatabaseUrl = DEFAULT,
) -> None:
    """Migrate the database schema down."""
    db = open_db(database_url, migrate_first=False)
    migrate.downgrade(db.engine, revision)
    console.print(f"database at {migrate.current_revision(db.engine)}")


@db_app.command("current")
def db_current(database_url: DatabaseUrl = DEFAULT) -> None:
    """Show the current and head revisions."""
    db = open_db(database_url, migrate_first=False)
    console.print(f"current {migrate.current_revision(db.engine)}, head {migrate.head_revision()}")


@token_app.command("create")
def token_create(
    project: Annotated[str, typer.Option(help="Project the token acts for.")],
    role: Annotated[Role, typer.Option(help="admin, operator or user.")] = Role.USER,
    name: Annotated[str, typer.Option(help="A label to recognise the token by.")] = "",
    database_url: DatabaseUrl = DEFAULT,
    as_json: JsonFlag = False,
) -> None:
    """Create an API token and print it (it is shown only once)."""
    with failing_nicely():
        secret = TokenService(open_db(database_url)).create(project=project, role=role, name=name)
    if as_json:
        emit_json({"token": secret, "project": project, "role": role.value})
    else:
        typer.echo(secret)


@providers_app.command("list")
def providers_list(
    database_url: DatabaseUrl = DEFAULT,
    kind: Annotated[list[ProviderKind] | None, typer.Option(help="Only these kinds (repeatable).")] = None,
    trait: Annotated[list[str] | None, typer.Option(help="Has all these traits (repeatable).")] = None,
    member_of: Annotated[list[str] | None, typer.Option(help="Member of any of these aggregates.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 1000,
    as_json: JsonFlag = False,
) -> None:
    """List providers with their capacity per class."""
    with failing_nicely():
        page = InventoryService(open_db(database_url)).list_providers(
            kinds=kind, traits=trait, aggregates=member_of, limit=limit
        )
    if as_json:
        emit_json(page.items)
        return
    rows = [
        (
            p.name,
            p.kind.value,
            ", ".join(f"{rc}={inv.capacity}" for rc, inv in p.inventories.items()),
            ", ".join(p.traits),
            p.generation,
        )
        for p in page.items
    ]
    table(
        f"providers ({len(rows)}{'+' if page.next_cursor else ''})",
        ["name", "kind", "capacity", "traits", "gen"],
        rows,
    )
