"""``slotbroker serve``, ``demo`` and ``admin worker``: run the broker on a database.

They act on the database directly (cli/admin.py); the server's modules load inside each command, so
the CLI starts without them installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Annotated

import typer

from slotbroker.cli.common import CreateFlag, DatabaseUrl, console, failing_nicely, open_db

DEFAULT_URL = "sqlite:///./var/slotbroker.db"

Host = Annotated[str, typer.Option(help="Interface to listen on.")]
Port = Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")]
Provisioners = Annotated[
    str | None,
    typer.Option(
        help="Provisioners to enable, comma-separated (default: SLOTBROKER_PROVISIONERS, else simulated). "
        "`local` runs commands on this host: see docs/operations.md, Security."
    ),
]


def enable_provisioners(names: str | None) -> tuple[str, ...]:
    """Make ``names`` (None: the configured ones) what every server process loads, after checking they
    are installed and the role settings parse; print them, and what ``local`` means when it is on."""
    import os

    from slotbroker.services.planner.provisioners.base import installed
    from slotbroker.services.planner.settings import enabled_from_env, parse_names, roles_from_env

    enabled = parse_names(names) if names is not None else enabled_from_env()
    known = installed()
    missing = [n for n in enabled if n not in known]
    if missing or not enabled:
        raise ValueError(f"provisioners not installed: {', '.join(missing) or '(none given)'}")
    os.environ["SLOTBROKER_PROVISIONERS"] = ",".join(enabled)  # uvicorn's worker processes read it
    roles = roles_from_env()
    console.print(f"provisioners: {', '.join(enabled)}")
    if "local" in enabled:
        who = os.environ.get("SLOTBROKER_LOCAL_RUN_AS") or "this server's user"
        role = roles.get("local", "operator")
        console.print(f"  local runs commands on this host as {who}, for tokens of role {role} or higher")
    return enabled


def serve(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    database_url: DatabaseUrl = DEFAULT_URL,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    provisioners: Provisioners = None,
    create: CreateFlag = False,
) -> None:
    """Run the API server (migrating the database first)."""
    import os

    import uvicorn

    from slotbroker.api.server import LOOP, PROTOCOL

    with failing_nicely():
        enable_provisioners(provisioners)
        open_db(database_url, create=create)
    os.environ["SLOTBROKER_DATABASE_URL"] = database_url
    uvicorn.run(
        "slotbroker.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        http=PROTOCOL,  # TCP_NODELAY on every connection, in multi-worker mode too (api/server.py)
        loop=LOOP,
    )


def demo(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    database_url: DatabaseUrl = DEFAULT_URL,
    days: Annotated[
        int, typer.Option(min=1, max=90, help="Days of synthetic bookings (a week back, rest ahead).")
    ] = 28,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic bookings.")] = 7,
    load_only: Annotated[bool, typer.Option(help="Load the demo data and exit without serving.")] = False,
) -> None:
    """Load the FABRIC-like demo testbed and a few weeks of bookings, submit a few jobs for the local
    provisioner in a one-hour lease on a demo host, then serve it (the server's worker pool runs them).
    The demo turns the local provisioner on, which `serve` leaves off: it runs commands on this host.
    It creates its database when it is not there: that is what it is for."""
    import os
    from dataclasses import replace
    from datetime import UTC, datetime

    from sqlalchemy import select

    from slotbroker.bootstrap import Services, build_services
    from slotbroker.config import Settings
    from slotbroker.demo.bookings import synthetic_bookings
    from slotbroker.demo.fabric import fabric_like_topology
    from slotbroker.domain.errors import CapacityConflict, Forbidden, NotFound
    from slotbroker.services.access.tokens import Role
    from slotbroker.services.inventory import demo_data
    from slotbroker.services.planner import JobSpec, Workload
    from slotbroker.services.planner.settings import enabled_from_env
    from slotbroker.store.models import ProviderRow
    from slotbroker.store.unit_of_work import UnitOfWork
    from slotbroker.wire.leases import CreateLease, LeaseItemSpec

    demo_jobs = (  # (id, name, command): run by the local provisioner on this machine
        ("demo-hello", "hello", ("sh", "-c", "echo hello from slotbroker; sleep 2")),
        ("demo-uname", "uname", ("uname", "-a")),
        ("demo-exit-3", "fails", ("sh", "-c", "echo about to fail; exit 3")),
    )
    enabled = tuple(dict.fromkeys((*enabled_from_env(), "local")))

    def submit_demo_jobs(svc: Services, now: int) -> tuple[str | None, list[str]]:
        """A one-hour lease (1 VCPU) on the first demo host with room, and the demo jobs in it; nothing
        new when the demo jobs exist already (``demo`` may run again on the same database)."""
        planner, leases = svc.planner, svc.leases
        try:
            planner.get(demo_jobs[0][0])
            return None, []
        except NotFound:
            pass
        with UnitOfWork(svc.db, readonly=True) as uow:
            hosts = uow.session.execute(
                select(ProviderRow.uuid, ProviderRow.name)
                .where(ProviderRow.kind == "host")
                .order_by(ProviderRow.name)
                .limit(50)
            ).all()
        lease_id: str | None = None
        for host_uuid, _name in hosts:
            try:
                lease = leases.create(
                    CreateLease(
                        name="demo jobs",
                        start=datetime.fromtimestamp(now, UTC),
                        end=datetime.fromtimestamp(now + 3600, UTC),
                        items=[LeaseItemSpec(provider_uuid=host_uuid, resource_class="VCPU", amount=1)],
                    ),
                    project="demo",
                    now_s=now,
                )
            except (CapacityConflict, Forbidden, NotFound):
                continue  # booked out (or no VCPU there): the next host
            lease_id = lease.id
            break
        if lease_id is None:
            raise CapacityConflict("no demo host has a free VCPU for the next hour", [])
        ids = []
        for job_id, name, argv in demo_jobs:
            workload = Workload(command=argv[:1], args=argv[1:])
            ids.append(planner.create(JobSpec(lease_id, "local", workload, job_id=job_id, name=name)).id)
        return lease_id, ids

    with failing_nicely():
        settings = replace(Settings(database_url=database_url), provisioners=enabled)
        svc = build_services(settings, open_db(database_url, create=True))
        db = svc.db
        doc = fabric_like_topology()
        report = svc.topology.import_(doc)
        now = int(time.time())
        if demo_data.lease_count(db) == 0:
            start = now - now % 3600 - 7 * 86_400
            bookings = synthetic_bookings(doc, start_s=start, days=days, seed=seed)
            loaded = demo_data.load_bookings(db, bookings, now_s=now)
        else:
            loaded = 0
        token = svc.tokens.create(project="demo", role=Role.ADMIN, name="demo admin")
        job_lease, job_ids = submit_demo_jobs(svc, now)
        svc.close()
    console.print(
        f"[bold]slotbroker demo[/bold]: {report.created} providers created, {report.unchanged} kept; "
        f"{loaded} leases loaded (database {database_url})"
    )
    console.print(f"  URL:         http://{host}:{port}/  (API docs: http://{host}:{port}/docs)")
    console.print(f"  admin token: {token}")
    console.print(
        f"  try:         curl -H 'Authorization: Bearer {token}' http://{host}:{port}/v1/providers?kind=site"
    )
    if job_ids:
        console.print(f"  jobs:        {', '.join(job_ids)} (local provisioner, lease {job_lease})")
    else:
        console.print(f"  jobs:        the demo jobs exist already ({', '.join(j[0] for j in demo_jobs)})")
    console.print(f"  CLI:         slotbroker login http://{host}:{port} --token {token}")
    console.print(
        f"  watch them:  curl -H 'Authorization: Bearer {token}' http://{host}:{port}/v1/jobs"
        "  |  slotbroker jobs list  (after the login above)"
    )
    if load_only:
        console.print(
            "  (--load-only: a server or `slotbroker admin worker` with SLOTBROKER_PROVISIONERS naming local "
            "runs the jobs)"
        )
        return
    if os.environ.get("SLOTBROKER_PLANNER_WORKERS") == "0":  # the server's pool must run the demo jobs
        del os.environ["SLOTBROKER_PLANNER_WORKERS"]
    console.print(
        "[bold]the local provisioner is ON[/bold] for this demo: its jobs run as commands on this host "
        "(`slotbroker serve` leaves it off unless SLOTBROKER_PROVISIONERS names it)"
    )
    serve(
        host=host,
        port=port,
        database_url=database_url,
        workers=1,
        provisioners=",".join(enabled),
        create=False,
    )


def worker(
    workers: Annotated[
        int | None, typer.Option(min=1, help="Steps at once (default SLOTBROKER_PLANNER_WORKERS).")
    ] = None,
    use_procrastinate: Annotated[
        bool, typer.Option("--procrastinate", help="Run a procrastinate worker (PostgreSQL).")
    ] = False,
    apply_schema: Annotated[
        bool, typer.Option(help="With --procrastinate: create procrastinate's tables if missing.")
    ] = True,
    exclusive: Annotated[
        bool, typer.Option(help="The only worker on this database: take over old claims at start.")
    ] = False,
    database_url: DatabaseUrl = DEFAULT_URL,
) -> None:
    """Run the planner's worker until interrupted (SIGINT / SIGTERM stop it cleanly)."""
    from slotbroker.bootstrap import build_distributed, build_planner
    from slotbroker.config import Settings
    from slotbroker.services.planner import WorkerPool

    with failing_nicely():
        settings = Settings(database_url=database_url)
        db = open_db(database_url)
        if use_procrastinate:
            planner, dist = build_distributed(settings, db)
            if apply_schema and not dist.schema_applied(db):
                dist.apply_schema()
            console.print(
                f"planner worker {dist.worker_id} (procrastinate) on {db.engine.url.render_as_string()}"
            )
            asyncio.run(_until_signal(lambda stop: dist.run_worker(concurrency=workers or 16, stop=stop)))
            return
        planner = build_planner(settings, db)
        pool = WorkerPool(planner, workers=workers, exclusive=exclusive)
        console.print(f"planner worker {pool.worker_id} ({pool.workers} at once) on {db.engine.url}")

        async def run_pool(stop: asyncio.Event) -> None:
            pool.start()
            await stop.wait()
            await pool.stop()

        asyncio.run(_until_signal(run_pool))


async def _until_signal(body: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await body(stop)


__all__ = ["demo", "serve", "worker"]
