"""``slotbroker offer``, ``accept``, ``reject``, ``leases``, ``extend`` and ``cancel``: booking.

Like every command they act on the database directly (docs/decisions/0004), through the service graph
the API uses (``bootstrap.build_services``), configured from the same ``SLOTBROKER_*`` settings (offer
TTL, lease policy). ``--project`` says whose offers are made (default ``cli``); elsewhere it
narrows what the command may touch, and without it the command acts as an admin (every project).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import isodate
import typer
from rich.table import Table

from slotbroker.cli.common import (
    DatabaseUrl,
    JsonFlag,
    console,
    emit_json,
    err_console,
    failing_nicely,
    services,
)
from slotbroker.cli.find_slot import DEFAULT_URL, ComponentOpt, LinkOpt, build_request
from slotbroker.domain.errors import FieldError, ValidationFailed
from slotbroker.wire.leases import LeaseView, UpdateLease
from slotbroker.wire.offers import (
    ALL_STRATEGIES,
    AcceptedLease,
    OfferSetRequest,
    OfferSetView,
    OfferView,
    Strategy,
)

LEASE_STATUSES = ("PENDING", "ACTIVE", "ENDED", "CANCELLED", "ERROR")

ProjectOpt = Annotated[
    str | None,
    typer.Option("--project", "-p", help="Act as this project (default: admin, every project)."),
]


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Like ``common.table``, but the first column (an id to copy into the next command) never wraps."""
    t = Table(title=title)
    for i, c in enumerate(columns):
        if i == 0:
            t.add_column(c, no_wrap=True, min_width=36)
        else:
            t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*(str(v) if v is not None else "" for v in r))
    console.print(t)


def _when(d: datetime) -> str:
    return d.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _placement(placement: dict[str, list[str]]) -> str:
    return "\n".join(f"{c}: {', '.join(hosts)}" for c, hosts in placement.items())


def print_offer_set(view: OfferSetView) -> None:
    rows = [
        (
            o.id,
            o.strategy.value,
            o.state.value,
            _when(o.start),
            _when(o.end),
            _placement(o.placement),
            _when(o.expires),
        )
        for o in view.offers
    ]
    table(
        f"offer set {view.id} ({view.status.value}, project {view.project})",
        ("offer", "strategy", "state", "start (UTC)", "end (UTC)", "placement", "expires (UTC)"),
        rows,
    )


def _items(lease: LeaseView) -> str:
    """One line per provider: ``host: 1 GPU_A30, 8 VCPU``."""
    by: dict[str, list[str]] = {}
    for it in lease.items:
        tag = f" (VLAN {it.vlan_tag})" if it.vlan_tag is not None else ""
        by.setdefault(it.provider_name, []).append(f"{it.amount} {it.resource_class}{tag}")
    return "\n".join(f"{name}: {', '.join(parts)}" for name, parts in by.items())


def print_leases(title: str, leases: list[LeaseView]) -> None:
    rows = [
        (
            lease.id,
            lease.name,
            lease.project,
            lease.status,
            _when(lease.start),
            _when(lease.end),
            lease.generation,
            _items(lease),
        )
        for lease in leases
    ]
    table(title, ("lease", "name", "project", "status", "start (UTC)", "end (UTC)", "gen", "items"), rows)


def offer(
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", exists=True, dir_okay=False, help="Request document (YAML or JSON)."),
    ] = None,
    component: ComponentOpt = None,
    link: LinkOpt = None,
    start: Annotated[str | None, typer.Option(help="Earliest start, ISO 8601 with offset.")] = None,
    end: Annotated[str | None, typer.Option(help="Latest end, ISO 8601 with offset.")] = None,
    duration: Annotated[str | None, typer.Option(help="ISO 8601 duration (PT4H) or seconds.")] = None,
    strategy: Annotated[
        list[Strategy] | None,
        typer.Option(
            "--strategy", "-s", help="earliest, largest, longest or best_fit (repeatable; default all)."
        ),
    ] = None,
    max_offers: Annotated[int, typer.Option(min=1, max=10, help="Most offers to make.")] = 4,
    project: Annotated[str, typer.Option("--project", "-p", help="Whose offers these are.")] = "cli",
    database_url: DatabaseUrl = DEFAULT_URL,
    as_json: JsonFlag = False,
) -> None:
    """Ask for offers: each holds its capacity until it expires; exit code 1 when nothing fits."""
    with failing_nicely(), services(database_url) as svc:
        doc = build_request(file, component or [], link or [], start, end, duration, None, None)
        body = OfferSetRequest(
            request=doc, strategies=strategy or list(ALL_STRATEGIES), max_offers=max_offers
        )
        view = svc.offers.create(body, project=project)
    if as_json:
        emit_json(view)
    elif view.offers:
        print_offer_set(view)
    if not view.offers:
        err_console.print(f"[yellow]nothing fits[/yellow]: offer set {view.id} is {view.status.value}")
        if view.explanation is not None:
            for b in view.explanation.blockers:
                err_console.print(f"  {b.reason}: {b.detail}")
        raise typer.Exit(1)


def accept(
    offer_id: Annotated[str, typer.Argument(help="The offer to accept.")],
    project: ProjectOpt = None,
    database_url: DatabaseUrl = DEFAULT_URL,
    as_json: JsonFlag = False,
) -> None:
    """Accept an offer: its hold becomes a lease and the set's other offers are rejected."""
    with failing_nicely(), services(database_url) as svc:
        lease: AcceptedLease = svc.offers.accept(offer_id, project=project)
    if as_json:
        emit_json(lease)
        return
    console.print(
        f"offer {offer_id} accepted: lease {lease.uuid} is {lease.status} (project {lease.project})"
    )
    table(
        f"lease {lease.uuid}",
        ("lease", "start (UTC)", "end (UTC)", "placement"),
        [(lease.uuid, _when(lease.start), _when(lease.end), _placement(lease.placement))],
    )


def reject(
    offer_id: Annotated[str, typer.Argument(help="The offer to reject.")],
    project: ProjectOpt = None,
    database_url: DatabaseUrl = DEFAULT_URL,
    as_json: JsonFlag = False,
) -> None:
    """Reject an offer and free its capacity now (rejecting twice is fine)."""
    with failing_nicely(), services(database_url) as svc:
        view: OfferView = svc.offers.reject(offer_id, project=project)
    if as_json:
        emit_json(view)
        return
    console.print(f"offer {view.id}: {view.state.value}")


def leases(
    status: Annotated[
        list[str] | None, typer.Option("--status", help=f"Any of {', '.join(LEASE_STATUSES)} (repeatable).")
    ] = None,
    project: Annotated[
        str | None, typer.Option("--project", "-p", help="Only this project's leases.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Most leases to show.")] = 100,
    database_url: DatabaseUrl = DEFAULT_URL,
    as_json: JsonFlag = False,
) -> None:
    """List leases in creation order."""
    with failing_nicely(), services(database_url) as svc:
        wanted = [s.upper() for s in status or []]
        bad = [s for s in wanted if s not in LEASE_STATUSES]
        if bad:
            raise ValidationFailed(
                f"--status: {', '.join(bad)} is not one of {', '.join(LEASE_STATUSES)}",
                [FieldError("--status", s) for s in bad],
            )
        found: list[LeaseView] = []
        cursor: str | None = None
        while len(found) < limit:
            page = svc.leases.list(
                project=project, status=wanted or None, cursor=cursor, limit=min(1000, limit - len(found))
            )
            found += page.items
            cursor = page.next_cursor
            if cursor is None:
                break
    if as_json:
        emit_json([lease.model_dump(mode="json") for lease in found])
        return
    print_leases(f"{len(found)} lease(s)" + (f" of {project}" if project else ""), found)


def _parse_end(end: str | None, by: str | None, lease: LeaseView) -> datetime:
    if (end is None) == (by is None):
        raise ValidationFailed("give --end or --by, not both", [FieldError("--end", "or --by")])
    if end is not None:
        try:
            value = datetime.fromisoformat(end.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationFailed(
                f"--end: {end!r} is not an ISO 8601 date-time", [FieldError("--end", end)]
            ) from None
        if value.tzinfo is None:
            raise ValidationFailed(f"--end: {end!r} needs a UTC offset", [FieldError("--end", end)])
        return value
    assert by is not None
    try:
        delta = isodate.parse_duration(by)
    except (isodate.ISO8601Error, ValueError):
        raise ValidationFailed(
            f"--by: {by!r} is not an ISO 8601 duration", [FieldError("--by", by)]
        ) from None
    if not isinstance(delta, timedelta):  # years or months: no fixed length
        raise ValidationFailed(
            f"--by: {by!r} has no fixed length; use days or hours", [FieldError("--by", by)]
        )
    return lease.end + delta


def extend(
    lease_id: Annotated[str, typer.Argument(help="The lease to extend (or shorten).")],
    end: Annotated[str | None, typer.Option(help="The new end, ISO 8601 with offset.")] = None,
    by: Annotated[
        str | None, typer.Option(help="Move the end by this ISO 8601 duration (PT2H, -PT1H).")
    ] = None,
    project: ProjectOpt = None,
    database_url: DatabaseUrl = DEFAULT_URL,
    as_json: JsonFlag = False,
) -> None:
    """Change a lease's end (compare-and-swap on the generation read just before)."""
    with failing_nicely(), services(database_url) as svc:
        current = svc.leases.get(lease_id, project=project)
        new_end = _parse_end(end, by, current)
        view = svc.leases.update(
            lease_id, UpdateLease(generation=current.generation, end=new_end), project=project
        )
    if as_json:
        emit_json(view)
        return
    print_leases(f"lease {view.id}: end {_when(current.end)} -> {_when(view.end)}", [view])


def cancel(
    lease_id: Annotated[str, typer.Argument(help="The lease to cancel.")],
    project: ProjectOpt = None,
    database_url: DatabaseUrl = DEFAULT_URL,
    as_json: JsonFlag = False,
) -> None:
    """Cancel a lease; its capacity is released at once (cancelling twice is fine)."""
    with failing_nicely(), services(database_url) as svc:
        view = svc.leases.cancel(lease_id, project=project)
    if as_json:
        emit_json(view)
        return
    console.print(f"lease {view.id}: {view.status}")
