"""Engine results as the find-slot wire models: the one place that reads engine types and writes
``wire/find_slot.py`` models (kept out of the wire so the client never loads the engine)."""

from __future__ import annotations

from slotbroker.domain.time import to_datetime
from slotbroker.engine import Explanation, SearchResult, Window
from slotbroker.wire.find_slot import (
    BlockerView,
    ExplanationView,
    FindSlotResult,
    PortView,
    RouteView,
    WindowView,
)


def window_view(w: Window) -> WindowView:
    return WindowView(
        start=to_datetime(w.start),
        end=to_datetime(w.end),
        duration_s=w.end - w.start,
        placement=w.placement,
        sites=w.sites,
        routes=[RouteView(a=r.a, b=r.b, links=list(r.links), latency_ms=r.latency_ms) for r in w.routes],
        ports=[
            PortView(
                site=p.site, port=p.port, component=p.component, vlans=list(p.vlans), links=list(p.links)
            )
            for p in w.ports
        ],
        score=w.score,
        alternates=w.alternates,
        grants=w.grants,
    )


def explanation_view(e: Explanation | None) -> ExplanationView | None:
    if e is None:
        return None
    return ExplanationView(
        blockers=[
            BlockerView(
                reason=b.reason.value,
                detail=b.detail,
                component=b.component,
                resource_class=b.resource_class,
                link=b.link,
                port=b.port,
                earliest_if_relaxed=to_datetime(b.earliest_if_relaxed)
                if b.earliest_if_relaxed is not None
                else None,
            )
            for b in e.blockers
        ],
        earliest_after_range=to_datetime(e.earliest_after_range)
        if e.earliest_after_range is not None
        else None,
    )


def result_view(result: SearchResult, search_start: int, search_end: int) -> FindSlotResult:
    return FindSlotResult(
        windows=[window_view(w) for w in result.windows],
        explanation=explanation_view(result.explanation),
        search_start=to_datetime(search_start),
        search_end=to_datetime(search_end),
        calendar_generation=result.generation,
        candidates_tried=result.candidates_tried,
        complete=result.searched_until is None,
        searched_until=to_datetime(result.searched_until) if result.searched_until is not None else None,
    )
