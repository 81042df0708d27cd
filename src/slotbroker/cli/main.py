"""``slotbroker``: the command line entry point."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from slotbroker.cli import admin, booking, find_slot, jobs, topology
from slotbroker.cli.common import DatabaseUrl, console, failing_nicely, open_db

app = typer.Typer(
    help="slotbroker: a time-aware resource broker.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(admin.db_app, name="db")
app.add_typer(admin.token_app, name="token")
app.add_typer(admin.providers_app, name="providers")
app.add_typer(topology.app, name="topology")
app.command("find-slot")(find_slot.find_slot)
app.command("calendar")(find_slot.calendar)
app.command("offer")(booking.offer)
app.command("accept")(booking.accept)
app.command("reject")(booking.reject)
app.command("leases")(booking.leases)
app.command("extend")(booking.extend)
app.command("cancel")(booking.cancel)
app.add_typer(jobs.app, name="jobs")
app.command("worker")(jobs.worker)

Host = Annotated[str, typer.Option(help="Interface to listen on.")]
Port = Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")]


@app.command()
def serve(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    database_url: DatabaseUrl = "sqlite:///./var/slotbroker.db",
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Run the API server (migrating the database first)."""
    import os

    import uvicorn

    os.environ["SLOTBROKER_DATABASE_URL"] = database_url
    open_db(database_url)
    uvicorn.run(
        "slotbroker.api.app:create_app", factory=True, host=host, port=port, workers=workers, log_level="info"
    )


@app.command()
def demo(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    database_url: DatabaseUrl = "sqlite:///./var/slotbroker.db",
    days: Annotated[
        int, typer.Option(min=1, max=90, help="Days of synthetic bookings (a week back, rest ahead).")
    ] = 28,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic bookings.")] = 7,
    load_only: Annotated[bool, typer.Option(help="Load the demo data and exit without serving.")] = False,
) -> None:
    """Load the FABRIC-like demo testbed and a few weeks of bookings, then serve it."""
    from slotbroker.demo.bookings import synthetic_bookings
    from slotbroker.demo.fabric import fabric_like_topology
    from slotbroker.services import demo_data
    from slotbroker.services.tokens import Role, TokenService
    from slotbroker.services.topology import TopologyService

    with failing_nicely():
        db = open_db(database_url)
        doc = fabric_like_topology()
        report = TopologyService(db).import_(doc)
        now = int(time.time())
        if demo_data.lease_count(db) == 0:
            start = now - now % 3600 - 7 * 86_400
            bookings = synthetic_bookings(doc, start_s=start, days=days, seed=seed)
            loaded = demo_data.load_bookings(db, bookings, now_s=now)
        else:
            loaded = 0
        token = TokenService(db).create(project="demo", role=Role.ADMIN, name="demo admin")
    console.print(
        f"[bold]slotbroker demo[/bold]: {report.created} providers created, {report.unchanged} kept; "
        f"{loaded} leases loaded (database {database_url})"
    )
    console.print(f"  URL:         http://{host}:{port}/  (API docs: http://{host}:{port}/docs)")
    console.print(f"  admin token: {token}")
    console.print(
        f"  try:         curl -H 'Authorization: Bearer {token}' http://{host}:{port}/v1/providers?kind=site"
    )
    if load_only:
        return
    serve(host=host, port=port, database_url=database_url, workers=1)


if __name__ == "__main__":
    app()
