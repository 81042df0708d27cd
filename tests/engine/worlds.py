"""Set-up the engine's selector tests share: a drawn request compiled against a drawn world, the
starts they walk through, and small hand-built worlds of one site."""

from __future__ import annotations

from hypothesis import strategies as st

from slotbroker.domain.errors import ValidationFailed
from slotbroker.domain.request import SlotRequest, parse_request
from slotbroker.engine import AllocationSnap, AllocationTable, CalendarIndex, HostSnap, SiteSnap, Snapshot
from slotbroker.engine.plan import Plan, compile_plan

from .strategies import H, requests, wild_documents


def planned(data: st.DataObject, snap: Snapshot) -> tuple[SlotRequest, CalendarIndex, Plan]:
    """A request drawn for ``snap`` (``strategies.requests``), the world's index and the plan."""
    req = data.draw(requests(snap))
    index = CalendarIndex(snap)
    return req, index, compile_plan(req, index)


def wild_planned(data: st.DataObject, snap: Snapshot) -> tuple[SlotRequest, CalendarIndex, Plan] | None:
    """As ``planned`` over the whole valid input space (``strategies.wild_documents``); None when the
    drawn document is refused by validation."""
    try:
        req = parse_request(data.draw(wild_documents(snap)))
    except ValidationFailed:
        return None
    index = CalendarIndex(snap)
    return req, index, compile_plan(req, index)


def windows(plan: Plan, n: int = 16) -> list[tuple[int, int]]:
    """The first ``n`` starts every half hour from the range start, each with its shortest end."""
    return [(s, s + plan.min_duration) for s in range(plan.range_start, plan.latest_start + 1, H // 2)][:n]


def one_site(hosts: tuple[HostSnap, ...], booked: list[AllocationSnap]) -> CalendarIndex:
    """The index of ``hosts`` (all at site "A") with ``booked`` on them; no links or ports."""
    return CalendarIndex(Snapshot(hosts, (SiteSnap("A"),), (), (), AllocationTable.from_rows(booked)))
