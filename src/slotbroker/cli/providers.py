"""``slotbroker providers``: browse the inventory through the server."""

from __future__ import annotations

from typing import Annotated

import typer

from slotbroker.cli import remote
from slotbroker.cli.output import Result, emit, first, more_note
from slotbroker.cli.remote import Remote


@remote.command
def providers(
    ctx: Remote,
    kind: Annotated[list[str] | None, typer.Option(help="Only these kinds (repeatable).")] = None,
    trait: Annotated[list[str] | None, typer.Option(help="Has all these traits (repeatable).")] = None,
    member_of: Annotated[list[str] | None, typer.Option(help="Member of any of these aggregates.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="Most providers to show.")] = 1000,
) -> None:
    """List providers with their capacity per class."""
    found, more = first(
        ctx.client.iter_providers(
            kind=kind, trait=trait, member_of=member_of, page_size=min(limit + 1, 1000)
        ),
        limit,
    )
    rows = [
        (
            p.uuid,
            p.name,
            p.kind.value,
            ", ".join(f"{rc}={inv.capacity}" for rc, inv in p.inventories.items()),
            ", ".join(p.traits),
        )
        for p in found
    ]
    result = Result(found, ("uuid", "name", "kind", "capacity", "traits"), rows, [p.uuid for p in found])
    if more:
        result.notes.append(more_note("providers", limit, "--kind, --trait or --member-of"))
    emit(result, ctx.output)
