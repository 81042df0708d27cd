"""The engine's entry point: compile a request, search the index, explain an empty answer.

Kept apart from ``search`` so that ``explain`` (which re-runs the search with one constraint relaxed)
can import the search without the search importing it back.
"""

from __future__ import annotations

from slotbroker.domain.request import SlotRequest
from slotbroker.engine.calendar import CalendarIndex
from slotbroker.engine.explain import explain_failure
from slotbroker.engine.plan import compile_plan
from slotbroker.engine.results import SearchResult
from slotbroker.engine.search import search_plan


def find_slots(index: CalendarIndex, request: SlotRequest, *, explain: bool = True) -> SearchResult:
    """Windows for ``request`` against ``index`` (deterministic)."""
    plan = compile_plan(request, index)
    windows, tried, rejections = search_plan(index, plan)
    why = explain_failure(index, plan, rejections) if explain and not windows else None
    return SearchResult(tuple(windows), why, index.generation, tried)
