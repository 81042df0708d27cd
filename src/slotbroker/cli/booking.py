"""``slotbroker offer``, ``accept``, ``reject``, ``leases``, ``lease show|rename``, ``extend``, ``cancel``.

Every id argument is passed to the server as typed: a whole id, a unique prefix or a name, which the
server resolves (one rule, in one place, for the CLI, the API and the portal alike).
"""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Annotated, Any

import typer

from slotbroker.cli import remote
from slotbroker.cli.find_slot import (
    ComponentOpt,
    DurationOpt,
    EndOpt,
    FileOpt,
    LinkOpt,
    StartOpt,
    build_request,
)
from slotbroker.cli.output import Result, emit, first, host_list, more_note
from slotbroker.cli.remote import Output, Remote, err_console
from slotbroker.domain.errors import FieldError, ValidationFailed
from slotbroker.domain.humantime import duration_seconds
from slotbroker.wire.leases import LeaseView
from slotbroker.wire.offers import ALL_STRATEGIES, OfferSetView, Strategy

LEASE_STATUSES = ("PENDING", "ACTIVE", "ENDED", "CANCELLED", "ERROR")
lease_app = typer.Typer(
    help="One lease: show, rename or export it.", no_args_is_help=True, rich_markup_mode=None
)
offer_set_app = typer.Typer(
    help="One offer set: show, rename or renew it.", no_args_is_help=True, rich_markup_mode=None
)

LeaseArg = Annotated[str, typer.Argument(help="The lease: its id, a unique prefix of it, or its name.")]
OfferArg = Annotated[str, typer.Argument(help="The offer: its id or a unique prefix of it.")]
SetArg = Annotated[str, typer.Argument(help="The offer set: its id, a unique prefix of it, or its name.")]


def _placement(placement: dict[str, list[str]]) -> str:
    return "\n".join(f"{c}: {host_list(hosts)}" for c, hosts in placement.items())


def _items(lease: LeaseView) -> str:
    """One line per provider: ``host: 1 GPU_A30, 8 VCPU``."""
    by: dict[str, list[str]] = {}
    for it in lease.items:
        tag = f" (VLAN {it.vlan_tag})" if it.vlan_tag is not None else ""
        by.setdefault(it.provider_name, []).append(f"{it.amount} {it.resource_class}{tag}")
    return "\n".join(f"{name}: {', '.join(parts)}" for name, parts in by.items())


def _hosts(lease: LeaseView) -> str:
    """Which host is which instance (``gpu: h1``) when the lease came from a request, else its items."""
    return _placement(lease.placement) if lease.placement else _items(lease)


def lease_result(ctx: Remote, leases: list[LeaseView], title: str | None = None) -> Result:
    """A lease listing; for one lease (``show``, ``extend`` ...) json and yaml print the object itself."""
    rows = [
        (lease.id, lease.name, lease.status, ctx.when(lease.start), ctx.when(lease.end), _hosts(lease))
        for lease in leases
    ]
    return Result(
        data=leases,
        columns=("lease", "name", "status", "start", "end", "hosts"),
        rows=rows,
        ids=[lease.id for lease in leases],
        title=title,
    )


def one(result: Result) -> Result:
    result.data = result.data[0]
    return result


def offer_set_result(ctx: Remote, view: OfferSetView) -> Result:
    rows = [
        (o.id, o.strategy.value, o.state.value, ctx.when(o.start), ctx.when(o.end), _placement(o.placement))
        for o in view.offers
    ]
    name = view.name
    expires = ctx.when(view.expires)
    return Result(
        data=view,
        columns=("offer", "strategy", "state", "start", "end", "placement"),
        rows=rows,
        ids=[o.id for o in view.offers],
        title=f"offer set {view.id}{f' ({name})' if name else ''}: {view.status.value}, expires {expires}",
    )


@remote.command
def offer(
    ctx: Remote,
    file: FileOpt = None,
    component: ComponentOpt = None,
    link: LinkOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    duration: DurationOpt = None,
    strategy: Annotated[
        list[Strategy] | None,
        typer.Option("--strategy", "-s", help="earliest, largest, longest or best_fit (repeatable)."),
    ] = None,
    max_offers: Annotated[int, typer.Option(min=1, max=10, help="Most offers to make.")] = 4,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Name the set (and its lease).")] = None,
) -> None:
    """Ask for offers: each holds its capacity until it expires; exit code 1 when nothing fits."""
    doc = build_request(ctx, file, component or [], link or [], start, end, duration)
    body: dict[str, Any] = {
        "request": doc,
        "strategies": [s.value for s in strategy or ALL_STRATEGIES],
        "max_offers": max_offers,
    }
    if name is not None:
        body["name"] = name
    view = ctx.client.create_offer_set(body)
    if view.offers or ctx.output is not Output.TABLE:
        emit(offer_set_result(ctx, view), ctx.output)
    if not view.offers:
        err_console.print(f"nothing fits: offer set {view.id} is {view.status.value}", markup=False)
        if view.explanation is not None:
            for b in view.explanation.blockers:
                err_console.print(f"  {b.reason}: {b.detail}", markup=False)
        raise typer.Exit(1)


@remote.command
def accept(ctx: Remote, offer_id: OfferArg) -> None:
    """Accept an offer: its hold becomes a lease and the set's other offers are rejected."""
    got = ctx.client.accept_offer(offer_id)
    emit(
        Result(
            data=got,
            columns=("lease", "status", "start", "end", "placement"),
            rows=[(got.uuid, got.status, ctx.when(got.start), ctx.when(got.end), _placement(got.placement))],
            ids=[got.uuid],
            title=f"offer {got.offer_id} accepted",
        ),
        ctx.output,
    )


@remote.command
def reject(ctx: Remote, offer_id: OfferArg) -> None:
    """Reject an offer and free its capacity now (rejecting twice is fine)."""
    view = ctx.client.reject_offer(offer_id)
    emit(Result(view, ("offer", "state"), [(view.id, view.state.value)], [view.id]), ctx.output)


@remote.command
def leases(
    ctx: Remote,
    status: Annotated[
        list[str] | None, typer.Option("--status", help=f"Any of {', '.join(LEASE_STATUSES)} (repeatable).")
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="Only leases still running at or after this time.")
    ] = None,
    end: Annotated[str | None, typer.Option(help="Only leases starting before this time.")] = None,
    project: Annotated[str | None, typer.Option("--project", "-p", help="Admins: this project's.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Most leases to show.")] = 100,
) -> None:
    """List your leases, newest first."""
    wanted = [s.upper() for s in status or []]
    bad = [s for s in wanted if s not in LEASE_STATUSES]
    if bad:
        raise ValidationFailed(
            f"--status: {', '.join(bad)} is not one of {', '.join(LEASE_STATUSES)}",
            [FieldError("--status", s) for s in bad],
        )
    found, more = first(
        ctx.client.iter_leases(
            status=wanted or None,
            project=project,
            start=ctx.instant(start, "--start") if start else None,
            end=ctx.instant(end, "--end") if end else None,
            page_size=min(limit + 1, 1000),
        ),
        limit,
    )
    found.sort(key=lambda lease: lease.created_at, reverse=True)
    result = lease_result(ctx, found, f"{len(found)} lease(s)")
    if more:
        result.notes.append(more_note("leases (newest first)", limit, "--status, --start or --end"))
    emit(result, ctx.output)


@lease_app.command("show")
@remote.command
def lease_show(ctx: Remote, lease_id: LeaseArg) -> None:
    """One lease: which host is which component, its items, status history and notices."""
    lease = ctx.client.get_lease(lease_id)
    emit(
        Result(
            data=lease,
            columns=(
                "lease",
                "name",
                "project",
                "status",
                "start",
                "end",
                "hosts",
                "items",
                "history",
                "notices",
            ),
            rows=[
                (
                    lease.id,
                    lease.name,
                    lease.project,
                    lease.status,
                    ctx.when(lease.start),
                    ctx.when(lease.end),
                    _placement(lease.placement),
                    _items(lease),
                    "\n".join(f"{ctx.when(t.at)} {t.status}" for t in lease.transitions),
                    "\n".join(f"{ctx.when(n.at)} {n.detail}" for n in lease.notices),
                )
            ],
            ids=[lease.id],
            vertical=True,
        ),
        ctx.output,
    )


@lease_app.command("rename")
@remote.command
def lease_rename(
    ctx: Remote, lease_id: LeaseArg, name: Annotated[str, typer.Argument(help="The new name.")]
) -> None:
    """Give a lease a name any command then takes in place of its id."""
    current = ctx.client.get_lease(lease_id)
    view = ctx.client.update_lease(current.id, {"generation": current.generation, "name": name})
    emit(one(lease_result(ctx, [view], f"lease {view.id} is now {view.name!r}")), ctx.output)


@remote.command
def extend(
    ctx: Remote,
    lease_id: LeaseArg,
    end: Annotated[str | None, typer.Option(help="The new end (now+8h, tomorrow 18:00, ISO ...).")] = None,
    by: Annotated[str | None, typer.Option(help="Move the end by this much: 2h, -30m, PT2H.")] = None,
) -> None:
    """Change a lease's end (compare-and-swap on the generation read just before)."""
    if (end is None) == (by is None):
        raise ValidationFailed("give --end or --by, not both", [FieldError("--end", "or --by")])
    current = ctx.client.get_lease(lease_id)
    if end is not None:
        new_end = ctx.instant(end, "--end")
    else:
        assert by is not None
        new_end = current.end + timedelta(seconds=duration_seconds(by, field="--by", signed=True))
    view = ctx.client.update_lease(current.id, {"generation": current.generation, "end": new_end.isoformat()})
    title = f"lease {view.id}: end {ctx.when(current.end)} -> {ctx.when(view.end)}"
    emit(one(lease_result(ctx, [view], title)), ctx.output)


@remote.command
def cancel(
    ctx: Remote,
    lease_id: LeaseArg,
    force: Annotated[bool, typer.Option("--force", help="Cancel even though jobs still run in it.")] = False,
) -> None:
    """Cancel a lease; its capacity is released at once (cancelling twice is fine). A lease with
    unfinished jobs is refused, naming them, unless --force (the jobs are stopped)."""
    view = ctx.client.cancel_lease(lease_id, force=force)
    emit(one(lease_result(ctx, [view], f"lease {view.id}: {view.status}")), ctx.output)


@lease_app.command("ics")
@remote.command
def lease_ics(ctx: Remote, lease_id: LeaseArg) -> None:
    """Print the lease as an iCalendar event (save it as .ics and open it in a calendar app)."""
    sys.stdout.write(ctx.client.lease_ics(lease_id))


@offer_set_app.command("show")
@remote.command
def offer_set_show(ctx: Remote, set_id: SetArg) -> None:
    """An offer set and its offers."""
    emit(offer_set_result(ctx, ctx.client.get_offer_set(set_id)), ctx.output)


@offer_set_app.command("rename")
@remote.command
def offer_set_rename(
    ctx: Remote, set_id: SetArg, name: Annotated[str, typer.Argument(help="The new name.")]
) -> None:
    """Give an offer set a name; the lease an accepted offer becomes takes it too."""
    emit(offer_set_result(ctx, ctx.client.rename_offer_set(set_id, name)), ctx.output)


@offer_set_app.command("renew")
@remote.command
def offer_set_renew(ctx: Remote, set_id: SetArg) -> None:
    """Keep the set's open offers (and the capacity they hold) for another offer TTL from now."""
    emit(offer_set_result(ctx, ctx.client.renew_offer_set(set_id)), ctx.output)
