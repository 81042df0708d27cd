"""The engine's entry point: compile a request, search the index, explain an empty answer.

Kept apart from ``search`` so that ``explain`` (which re-runs the search with one constraint relaxed)
can import the search without the search importing it back.
"""

from __future__ import annotations

from collections.abc import Callable

from slotbroker.domain.request import SlotRequest
from slotbroker.engine.calendar import CalendarIndex
from slotbroker.engine.explain import explain_failure
from slotbroker.engine.plan import compile_plan
from slotbroker.engine.results import SearchResult
from slotbroker.engine.search import search_plan


def find_slots(
    index: CalendarIndex,
    request: SlotRequest,
    *,
    explain: bool = True,
    out_of_time: Callable[[], bool] | None = None,
) -> SearchResult:
    """Windows for ``request`` against ``index`` (deterministic unless ``out_of_time`` stops the search
    early: then ``searched_until`` says where, and nothing is explained, as nothing was proven)."""
    plan = compile_plan(request, index)
    windows, tried, rejections, stopped = search_plan(index, plan, out_of_time=out_of_time)
    why = explain_failure(index, plan, rejections) if explain and not windows and stopped is None else None
    return SearchResult(tuple(windows), why, index.generation, tried, stopped)
