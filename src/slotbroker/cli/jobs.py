"""``slotbroker jobs submit|list|show|cancel|logs``: jobs run inside leases by provisioners (the planner).

Jobs are run by the server's workers (docs/planner.md); these commands only ask the server.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer

from slotbroker.cli import remote
from slotbroker.cli.output import Result, emit, first, more_note
from slotbroker.cli.remote import Output, Remote, console
from slotbroker.domain.errors import FieldError, ValidationFailed
from slotbroker.domain.humantime import duration_seconds
from slotbroker.domain.jobs import TERMINAL, JobState
from slotbroker.wire.jobs import JobOut

app = typer.Typer(
    help="Jobs run inside leases by provisioners (the planner).", no_args_is_help=True, rich_markup_mode=None
)
STATES = tuple(s.value for s in JobState)
TERMINAL_STATES = frozenset(s.value for s in TERMINAL)
JobArg = Annotated[str, typer.Argument(help="Job id.")]


def job_result(ctx: Remote, jobs: list[JobOut], title: str | None = None) -> Result:
    rows = [
        (j.id, j.name, j.state, j.lease_id, j.provisioner, j.attempt, ctx.when(j.created_at)) for j in jobs
    ]
    return Result(
        data=jobs,
        columns=("job", "name", "state", "lease", "provisioner", "attempt", "created"),
        rows=rows,
        ids=[j.id for j in jobs],
        title=title,
    )


def one_job(ctx: Remote, job: JobOut) -> Result:
    return Result(
        data=job,
        columns=(
            "job",
            "name",
            "state",
            "lease",
            "provisioner",
            "attempt",
            "command",
            "exit code",
            "error",
            "history",
        ),
        rows=[
            (
                job.id,
                job.name,
                job.state,
                job.lease_id,
                job.provisioner,
                job.attempt,
                " ".join([*job.workload.command, *job.workload.args]),
                job.exit_code,
                job.error,
                "\n".join(
                    f"{ctx.when(t.at)} {t.from_state or '-'} -> {t.to_state} {t.detail}".rstrip()
                    for t in job.transitions
                ),
            )
        ],
        ids=[job.id],
        vertical=True,
    )


def _env(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValidationFailed(f"--env: {pair!r} is not KEY=VALUE", [FieldError("--env", pair)])
        out[key] = value
    return out


@app.command()
@remote.command
def submit(
    ctx: Remote,
    command: Annotated[list[str], typer.Argument(help="The command and its arguments (after --).")],
    lease: Annotated[str, typer.Option("--lease", "-l", help="The lease to run in (id, prefix or name).")],
    provisioner: Annotated[str, typer.Option("--provisioner", help="Provisioner name.")] = "local",
    job_id: Annotated[str | None, typer.Option("--id", help="Job id (idempotency key).")] = None,
    name: Annotated[str, typer.Option("--name", help="A label.")] = "",
    priority: Annotated[int, typer.Option("--priority", help="Higher first (queue policy priority).")] = 0,
    env: Annotated[list[str] | None, typer.Option("--env", "-e", help="KEY=VALUE (repeatable).")] = None,
    wait: Annotated[
        str | None, typer.Option("--wait", help="Wait this long (10m, 1h ...) for the job to finish.")
    ] = None,
) -> None:
    """Submit a job: run COMMAND inside lease LEASE with a provisioner."""
    timeout = duration_seconds(wait, field="--wait") if wait is not None else None
    lease_id = ctx.client.get_lease(lease).id  # the server resolves a prefix or a name
    body = {
        "lease_id": lease_id,
        "provisioner": provisioner,
        "name": name,
        "priority": priority,
        "workload": {"command": command[:1], "args": command[1:], "env": _env(env or [])},
    }
    if job_id is not None:
        body["id"] = job_id
    job = ctx.client.create_job(body)
    if timeout is not None:
        deadline = time.monotonic() + timeout
        while job.state not in TERMINAL_STATES:
            if time.monotonic() > deadline:
                raise ValidationFailed(
                    f"job {job.id} is still {job.state}", [FieldError("--wait", wait or "")]
                )
            time.sleep(0.2)
            job = ctx.client.get_job(job.id)
    emit(one_job(ctx, job), ctx.output)
    if timeout is not None and job.state != JobState.SUCCEEDED:
        raise typer.Exit(1)


@app.command("list")
@remote.command
def list_(
    ctx: Remote,
    state: Annotated[
        list[str] | None, typer.Option("--state", help=f"Any of {', '.join(STATES)} (repeatable).")
    ] = None,
    lease: Annotated[str | None, typer.Option("--lease", "-l", help="Only this lease's jobs.")] = None,
    project: Annotated[str | None, typer.Option("--project", "-p", help="Admins: this project's.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Most jobs to show.")] = 100,
) -> None:
    """List jobs, newest first."""
    lease_id = ctx.client.get_lease(lease).id if lease else None
    found, more = first(
        ctx.client.iter_jobs(
            state=[s.lower() for s in state] if state else None,
            project=project,
            lease=lease_id,
            page_size=min(limit + 1, 500),
        ),
        limit,
    )
    result = job_result(ctx, found, f"{len(found)} job(s)")
    if more:
        result.notes.append(more_note("jobs (newest first)", limit, "--state or --lease"))
    emit(result, ctx.output)


@app.command()
@remote.command
def show(ctx: Remote, job_id: JobArg) -> None:
    """Show a job and its state changes."""
    emit(one_job(ctx, ctx.client.get_job(job_id)), ctx.output)


@app.command()
@remote.command
def cancel(ctx: Remote, job_id: JobArg) -> None:
    """Cancel a job (idempotent): pending at once, otherwise a worker tears it down (cancel, release)."""
    emit(one_job(ctx, ctx.client.cancel_job(job_id)), ctx.output)


@app.command()
@remote.command
def logs(
    ctx: Remote,
    job_id: JobArg,
    after: Annotated[int, typer.Option(min=0, help="Only lines after this id.")] = 0,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the job ends.")] = False,
) -> None:
    """Print a job's log (planner notes and the run's output); -o json prints one object a line."""
    import json

    while True:
        page = ctx.client.job_logs(job_id, after=after)
        for x in page.items:
            if ctx.output in (Output.JSON, Output.YAML):
                print(json.dumps(x.model_dump(mode="json")))
            elif ctx.output is Output.ID:
                print(x.id)
            else:
                console.print(f"{ctx.when(x.at)} [{x.stream}] {x.line}")
        after = page.items[-1].id if page.items else after
        if not follow or (not page.items and ctx.client.get_job(job_id).state in TERMINAL_STATES):
            return
        if not page.items:
            time.sleep(0.5)
