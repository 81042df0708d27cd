"""``slotbroker feed create|list|revoke``: read-only calendar URLs of your leases for calendar apps."""

from __future__ import annotations

from typing import Annotated

import typer

from slotbroker.cli import remote
from slotbroker.cli.output import Result, emit
from slotbroker.cli.remote import Remote
from slotbroker.wire.calendar_feeds import FeedView

app = typer.Typer(
    help="Calendar feeds: subscribe a calendar app to your project's leases.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _feeds(ctx: Remote, feeds: list[FeedView]) -> Result:
    rows = [
        (
            f.id,
            f.name,
            f.project,
            f.prefix,
            ctx.when(f.created_at),
            ctx.when(f.revoked_at) if f.revoked_at else "",
        )
        for f in feeds
    ]
    return Result(
        feeds,
        ("feed", "name", "project", "secret starts", "created", "revoked"),
        rows,
        [str(f.id) for f in feeds],
    )


@app.command("create")
@remote.command
def create(ctx: Remote, name: Annotated[str, typer.Argument(help="To tell your feeds apart.")] = "") -> None:
    """Make a feed and print its URL (shown only now: whoever has it can read your leases)."""
    feed = ctx.client.create_calendar_feed({"name": name})
    url = ctx.target().url.rstrip("/") + feed.url if feed.url.startswith("/") else feed.url
    result = _feeds(ctx, [feed])
    result.data, result.ids, result.notes = feed, [url], [f"subscribe to: {url}"]
    emit(result, ctx.output)


@app.command("list")
@remote.command
def list_(ctx: Remote) -> None:
    """Your project's calendar feeds (their secrets are not shown again)."""
    emit(_feeds(ctx, ctx.client.list_calendar_feeds()), ctx.output)


@app.command("revoke")
@remote.command
def revoke(
    ctx: Remote, feed_id: Annotated[int, typer.Argument(help="The feed's number (feed list).")]
) -> None:
    """Revoke a feed: its URL stops working at once."""
    feed = ctx.client.revoke_calendar_feed(feed_id)
    result = _feeds(ctx, [feed])
    result.data = feed
    emit(result, ctx.output)
