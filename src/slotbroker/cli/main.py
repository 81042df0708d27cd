"""``slotbroker``: the command line entry point.

User commands talk to a server (``--url``/``SLOTBROKER_URL``, ``--token``/``SLOTBROKER_TOKEN`` or a
profile from ``slotbroker login``); operator commands that open a database live under ``admin``
(``demo`` and ``serve`` are also kept at the top, as the README and Makefile use them). Help text is
printed verbatim (``rich_markup_mode=None``): option syntax such as ``[@SITE]`` and ``A:B:GBPS`` must
not be read as markup or emoji.
"""

from __future__ import annotations

import typer

from slotbroker.cli import (
    admin,
    booking,
    compact,
    feeds,
    find_slot,
    heatmap,
    jobs,
    login,
    mcp,
    providers,
    replay,
    server,
    slurm_import,
)
from slotbroker.cli import topology as topology_cli

app = typer.Typer(
    help="slotbroker: a time-aware resource broker.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)
app.command("find-slot")(find_slot.find_slot)
app.command("calendar")(heatmap.calendar)
app.command("sites")(heatmap.sites)
app.command("providers")(providers.providers)
app.command("offer")(booking.offer)
app.command("accept")(booking.accept)
app.command("reject")(booking.reject)
app.add_typer(booking.offer_set_app, name="offer-set")
app.command("leases")(booking.leases)
app.add_typer(booking.lease_app, name="lease")
app.command("extend")(booking.extend)
app.command("cancel")(booking.cancel)
app.command("compact")(compact.compact)
booking.lease_app.command("compact")(compact.lease_compact)
app.add_typer(jobs.app, name="jobs")
app.add_typer(feeds.app, name="feed")
app.command("login")(login.login)
app.command("profiles")(login.profiles_)
app.add_typer(admin.app, name="admin")
slurm_import.register(topology_cli.app)  # admin topology import-slurm / sync-slurm
app.command("mcp")(mcp.mcp)
app.command("replay")(replay.replay)
app.command("serve")(server.serve)
app.command("demo")(server.demo)

if __name__ == "__main__":
    app()
