"""``slotbroker jobs submit|list|show|cancel|logs`` and ``slotbroker worker``: the planner.

Like every command they act on the database directly (docs/decisions/0004) through the same ``Planner``
the API uses (its provisioners are the installed entry points, its settings ``SLOTBROKER_PLANNER_*``).
``--project`` narrows what a command may touch; without it the command acts as an admin. Jobs are run by
a worker: the API server's embedded pool, or ``slotbroker worker`` (embedded asyncio pool by default,
``--procrastinate`` on PostgreSQL for a procrastinate worker; docs/operations.md, "Planner workers").
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Annotated

import typer

from slotbroker.bootstrap import build_distributed, build_planner
from slotbroker.cli.common import (
    DatabaseUrl,
    JsonFlag,
    build,
    console,
    emit_json,
    failing_nicely,
    open_db,
    table,
)
from slotbroker.cli.find_slot import DEFAULT_URL
from slotbroker.config import Settings
from slotbroker.domain.errors import FieldError, ValidationFailed
from slotbroker.domain.jobs import TERMINAL, JobSpec, JobState, Workload
from slotbroker.services.planner import Planner, WorkerPool
from slotbroker.wire.jobs import JobOut

app = typer.Typer(help="Jobs run inside leases by provisioners (the planner).", no_args_is_help=True)
STATES = tuple(s.value for s in JobState)
TERMINAL_STATES = frozenset(s.value for s in TERMINAL)

ProjectOpt = Annotated[
    str | None,
    typer.Option("--project", "-p", help="Act as this project (default: admin, every project)."),
]


def _planner(database_url: str) -> Planner:
    return build(database_url).planner


def _as_json(job: JobOut) -> dict[str, object]:
    return job.model_dump(mode="json")


def _print_jobs(title: str, jobs: list[JobOut]) -> None:
    rows = [
        (j.id, j.name, j.project, j.lease_id, j.provisioner, j.state, j.attempt, j.created_at.isoformat())
        for j in jobs
    ]
    table(title, ["id", "name", "project", "lease", "provisioner", "state", "attempt", "created"], rows)


def _print_job(job: JobOut) -> None:
    console.print(f"[bold]{job.id}[/bold] {job.name}  state [bold]{job.state}[/bold]")
    console.print(f"  project {job.project}  lease {job.lease_id}  provisioner {job.provisioner}")
    console.print(f"  command {' '.join(job.workload.domain().argv) or '-'}")
    if job.provision_id or job.run_id:
        console.print(
            f"  provision {job.provision_id or '-'}  run {job.run_id or '-'}  attempt {job.attempt}"
        )
    if job.exit_code is not None or job.error:
        console.print(f"  exit code {job.exit_code}  error {job.error or '-'}")
    for t in job.transitions:
        console.print(f"  {t.at.isoformat()}  {t.from_state or '-'} -> {t.to_state}  {t.detail}")


def _env(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValidationFailed(f"--env: {pair!r} is not KEY=VALUE", [FieldError("--env", pair)])
        out[key] = value
    return out


@app.command()
def submit(
    command: Annotated[list[str], typer.Argument(help="The command and its arguments (after --).")],
    lease: Annotated[str, typer.Option("--lease", "-l", help="The lease to run in.")],
    provisioner: Annotated[str, typer.Option("--provisioner", help="Provisioner name.")] = "local",
    job_id: Annotated[str | None, typer.Option("--id", help="Job id (idempotency key).")] = None,
    name: Annotated[str, typer.Option("--name", help="A label.")] = "",
    priority: Annotated[int, typer.Option("--priority", help="Higher first (queue policy priority).")] = 0,
    env: Annotated[list[str] | None, typer.Option("--env", "-e", help="KEY=VALUE (repeatable).")] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait until the job is terminal (a worker runs it).")
    ] = False,
    timeout: Annotated[float, typer.Option(help="With --wait: give up after this many seconds.")] = 600.0,
    project: ProjectOpt = None,
    database_url: DatabaseUrl = DEFAULT_URL,
    as_json: JsonFlag = False,
) -> None:
    """Submit a job: run COMMAND inside lease LEASE with a provisioner."""
    with failing_nicely():
        planner = _planner(database_url)
        workload = Workload(command=tuple(command[:1]), args=tuple(command[1:]), env=_env(env or []))
        spec = JobSpec(lease, provisioner, workload, priority=priority, job_id=job_id, name=name)
        job = planner.create(spec, project=project)
        if wait:
            deadline = time.monotonic() + timeout
            while job.state not in TERMINAL_STATES:
                if time.monotonic() > deadline:
                    raise ValidationFailed(
                        f"job {job.id} is still {job.state}", [FieldError("--timeout", "")]
                    )
                time.sleep(0.2)
                job = planner.get(job.id)
    if as_json:
        emit_json(_as_json(job))
        return
    _print_job(job)
    if wait and job.state != JobState.SUCCEEDED:
        raise typer.Exit(1)


@app.command("list")
def list_(
    state: Annotated[
        list[str] | None, typer.Option("--state", help=f"Any of {', '.join(STATES)} (repeatable).")
    ] = None,
    lease: Annotated[str | None, typer.Option("--lease", "-l", help="Only this lease's jobs.")] = None,
    project: Annotated[str | None, typer.Option("--project", "-p", help="Only this project's jobs.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Most jobs to show.")] = 100,
    database_url: DatabaseUrl = DEFAULT_URL,
    as_json: JsonFlag = False,
) -> None:
    """List jobs, newest first."""
    with failing_nicely():
        planner = _planner(database_url)
        found: list[JobOut] = []
        cursor: str | None = None
        while len(found) < limit:
            page = planner.list(
                limit=min(500, limit - len(found)),
                cursor=cursor,
                states=[s.lower() for s in state] if state else None,
                project=project,
                lease_id=lease,
            )
            found += page.items
            cursor = page.next_cursor
            if cursor is None:
                break
    if as_json:
        emit_json([_as_json(j) for j in found])
        return
    _print_jobs(f"{len(found)} job(s)" + (f" of {project}" if project else ""), found)


@app.command()
def show(
    job_id: Annotated[str, typer.Argument(help="Job id.")],
    project: ProjectOpt = None,
    database_url: DatabaseUrl = DEFAULT_URL,
    as_json: JsonFlag = False,
) -> None:
    """Show a job and its state changes."""
    with failing_nicely():
        job = _planner(database_url).get(job_id, project=project)
    if as_json:
        emit_json(_as_json(job))
        return
    _print_job(job)


@app.command()
def cancel(
    job_id: Annotated[str, typer.Argument(help="Job id.")],
    project: ProjectOpt = None,
    database_url: DatabaseUrl = DEFAULT_URL,
    as_json: JsonFlag = False,
) -> None:
    """Cancel a job (idempotent): pending at once, otherwise a worker tears it down (cancel, release)."""
    with failing_nicely():
        job = _planner(database_url).cancel(job_id, project=project)
    if as_json:
        emit_json(_as_json(job))
        return
    _print_job(job)


@app.command()
def logs(
    job_id: Annotated[str, typer.Argument(help="Job id.")],
    after: Annotated[int, typer.Option(min=0, help="Only lines after this id.")] = 0,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the job ends.")] = False,
    project: ProjectOpt = None,
    database_url: DatabaseUrl = DEFAULT_URL,
    as_json: JsonFlag = False,
) -> None:
    """Print a job's log (planner notes and the run's output)."""
    with failing_nicely():
        planner = _planner(database_url)
        while True:
            lines = planner.logs(job_id, project=project, after=after)
            for x in lines:
                if as_json:
                    emit_json({"id": x.id, "at": x.at.isoformat(), "stream": x.stream, "line": x.line})
                else:
                    console.print(f"{x.at.isoformat()} [{x.stream}] {x.line}", markup=False, highlight=False)
            after = lines[-1].id if lines else after
            if not follow or (not lines and planner.get(job_id, project=project).state in TERMINAL_STATES):
                return
            if not lines:
                time.sleep(0.5)


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


__all__ = ["app", "worker"]
