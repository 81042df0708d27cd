"""The placement engine: a calendar index over a snapshot, find-slot search and the calendar view.

Public API (what services call)::

    snap = Snapshot(hosts=..., sites=..., links=..., ports=..., allocations=AllocationTable.from_rows(rows))
    index = CalendarIndex(snap, generation=g)         # build once
    index.add(alloc); index.remove(alloc); index.generation = g2   # keep current
    result = find_slots(index, parse_request(doc))    # windows or result.explanation
    view = calendar_view(index, start_s, end_s, Bucket.DAY)

The engine never touches the database and is deterministic for a given index and request.
"""

from slotbroker.domain.time import Bucket
from slotbroker.engine.calendar import CalendarIndex
from slotbroker.engine.find_slots import find_slots
from slotbroker.engine.plan import EXACT_LIMIT
from slotbroker.engine.results import Blocker, Explanation, LinkRoute, PortAssignment, SearchResult, Window
from slotbroker.engine.snapshot import (
    AllocationSnap,
    AllocationTable,
    HostSnap,
    InventorySnap,
    LinkSnap,
    PortSnap,
    SiteSnap,
    Snapshot,
)
from slotbroker.engine.stages.base import Reason
from slotbroker.engine.view import CalendarView, ViewRow, calendar_view

__all__ = [
    "EXACT_LIMIT",
    "AllocationSnap",
    "AllocationTable",
    "Blocker",
    "Bucket",
    "CalendarIndex",
    "CalendarView",
    "Explanation",
    "HostSnap",
    "InventorySnap",
    "LinkRoute",
    "LinkSnap",
    "PortAssignment",
    "PortSnap",
    "Reason",
    "SearchResult",
    "SiteSnap",
    "Snapshot",
    "ViewRow",
    "Window",
    "calendar_view",
    "find_slots",
]
