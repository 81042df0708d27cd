"""``slotbroker compact [LEASE ...]`` and ``slotbroker lease compact LEASE``: move PENDING leases to their
earliest possible start, as if each were gone from the calendar (never later). The server does the
search and the move (``POST /v1/leases/compact``, ``POST /v1/leases/{lease}/compact``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from slotbroker.cli import remote
from slotbroker.cli.booking import LeaseArg, lease_result, one
from slotbroker.cli.output import Result, emit
from slotbroker.cli.remote import Remote
from slotbroker.domain.request import Policy

KeepHosts = Annotated[
    bool,
    typer.Option(
        "--keep-hosts", help="Only earlier on its own hosts (default: other hosts of the site may take it)."
    ),
]
PolicyOpt = Annotated[
    Policy, typer.Option(help="find-slot's placement policy among the hosts that fit earliest.")
]


def _when(ctx: Remote, value: datetime | None) -> str:
    return "" if value is None else ctx.when(value)


@remote.command
def compact(
    ctx: Remote,
    leases: Annotated[
        list[str] | None,
        typer.Argument(help="Leases (ids, prefixes or names) in this order; none: your PENDING ones."),
    ] = None,
    keep_hosts: KeepHosts = False,
    policy: PolicyOpt = Policy.EARLIEST,
    limit: Annotated[
        int | None, typer.Option(min=1, max=1000, help="With no LEASE: at most this many.")
    ] = None,
) -> None:
    """Move PENDING leases to their earliest start, one after another (earliest start first when none
    is named); each says where it went or why it stayed."""
    report = ctx.client.compact_leases(
        leases or None, allow_host_swap=not keep_hosts, policy=policy.value, limit=limit
    )
    rows = [
        (o.lease, o.name, "moved" if o.moved else o.reason, _when(ctx, o.previous_start), _when(ctx, o.start))
        for o in report.items
    ]
    title = f"{report.moved} of {len(report.items)} lease(s) moved earlier"
    result = Result(data=report, columns=("lease", "name", "outcome", "was", "start"), rows=rows, title=title)
    result.ids = [o.lease for o in report.items]
    emit(result, ctx.output)


@remote.command
def lease_compact(
    ctx: Remote, lease_id: LeaseArg, keep_hosts: KeepHosts = False, policy: PolicyOpt = Policy.EARLIEST
) -> None:
    """Move one PENDING lease to its earliest start (compare-and-swap on the generation read just
    before); unchanged, saying why, when nothing earlier fits."""
    current = ctx.client.get_lease(lease_id)
    got = ctx.client.compact_lease(
        current.id, generation=current.generation, allow_host_swap=not keep_hosts, policy=policy.value
    )
    if got.moved:
        title = f"lease {current.id}: start {ctx.when(got.previous_start)} -> {ctx.when(got.lease.start)}"
    else:
        title = f"lease {current.id} stays at {ctx.when(got.lease.start)} ({got.reason})"
    emit(one(lease_result(ctx, [got.lease], title)), ctx.output)
