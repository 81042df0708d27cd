"""Lease rows as ``LeaseView``s: their allocations, scheduled events, the status transitions and the
notices they fired, for a page of leases in two queries."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from slotbroker.domain.claims import ConsumerStatus
from slotbroker.domain.time import to_datetime
from slotbroker.services.booking.lease_events import CANCELLED, ERROR
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire.leases import (
    LeaseEventView,
    LeaseItemView,
    LeaseView,
    NoticeView,
    TransitionView,
)

TRANSITION_OF = {
    "start": ConsumerStatus.ACTIVE.value,
    "end": ConsumerStatus.ENDED.value,
    CANCELLED: ConsumerStatus.CANCELLED.value,
    ERROR: ConsumerStatus.ERROR.value,
}


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def lease_views(uow: UnitOfWork, rows: Sequence[Any]) -> list[LeaseView]:
    """Lease views of consumer rows, with their allocations and events (two queries for the page)."""
    # a lease's rows mostly share its start and end: each instant is made once (datetimes are immutable)
    instant = functools.cache(to_datetime)
    ids = [int(r.id) for r in rows]
    allocs: dict[int, list[LeaseItemView]] = {i: [] for i in ids}
    events: dict[int, list[Any]] = {i: [] for i in ids}
    if ids:
        for a in uow.leases.allocations_of(ids):
            allocs[int(a.consumer_id)].append(
                LeaseItemView(
                    provider_uuid=str(a.uuid),
                    provider_name=str(a.name),
                    resource_class=str(a.resource_class),
                    amount=int(a.amount),
                    vlan_tag=a.vlan_tag,
                    start=instant(int(a.start_s)),
                    end=instant(int(a.end_s)),
                )
            )
        for e in uow.leases.events_of(ids):
            events[int(e.consumer_id)].append(e)
    out: list[LeaseView] = []
    for r in rows:
        created = _utc(r.created_at)
        transitions = [TransitionView(status=ConsumerStatus.PENDING.value, at=created)]
        notices: list[NoticeView] = []
        scheduled: list[LeaseEventView] = []
        fired = sorted(
            (e for e in events[int(r.id)] if e.fired_at is not None),
            key=lambda e: (_utc(e.fired_at), e.due_s),
        )
        for e in fired:
            if e.kind in TRANSITION_OF:
                transitions.append(TransitionView(status=TRANSITION_OF[e.kind], at=_utc(e.fired_at)))
            elif e.kind == "before_end":
                notices.append(
                    NoticeView(
                        kind="before_end",
                        at=_utc(e.fired_at),
                        detail=f"the lease ends at {instant(int(r.end_s)).isoformat()}",
                    )
                )
        for e in events[int(r.id)]:
            if e.kind in ("start", "before_end", "end"):
                scheduled.append(
                    LeaseEventView(
                        kind=e.kind,
                        due=instant(int(e.due_s)),
                        fired_at=None if e.fired_at is None else _utc(e.fired_at),
                    )
                )
        out.append(
            LeaseView(
                id=str(r.uuid),
                name=str(r.name or ""),
                project=str(r.project),
                status=str(r.status),
                start=instant(int(r.start_s)),
                end=instant(int(r.end_s)),
                start_s=int(r.start_s),
                end_s=int(r.end_s),
                generation=int(r.generation),
                created_at=created,
                items=allocs[int(r.id)],
                placement=json.loads(r.placement) if getattr(r, "placement", None) else {},
                events=scheduled,
                transitions=transitions,
                notices=notices,
            )
        )
    return out
