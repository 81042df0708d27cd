"""What find-slot answers: windows with one placement valid for the whole window, or why nothing fits."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from slotbroker.wire.display import Tabular, hosts


class RouteView(BaseModel):
    a: str = Field(description="First component.")
    b: str = Field(description="Second component.")
    links: list[str] = Field(description="Link names in path order; empty when both share a site.")
    latency_ms: float


class PortView(BaseModel):
    site: str
    port: str
    component: str
    vlans: list[int] = Field(description="Concrete VLAN tags free for the whole window.")
    links: list[str]


class WindowView(BaseModel):
    start: datetime
    end: datetime
    duration_s: int
    placement: dict[str, list[str]] = Field(description="Component -> one host per instance.")
    sites: dict[str, str] = Field(description="Component -> site.")
    routes: list[RouteView]
    ports: list[PortView]
    score: float
    alternates: dict[str, list[str]] = Field(description="Component -> other hosts that fit this window.")
    grants: dict[str, list[dict[str, int]]] = Field(description="Elastic amounts granted per instance.")
    allocation_request: str | None = Field(
        None, description="Id to claim exactly this window (POST /v1/claims), valid for a short time."
    )


class BlockerView(BaseModel):
    reason: str
    detail: str
    component: str | None = None
    resource_class: str | None = None
    link: str | None = None
    port: str | None = None
    earliest_if_relaxed: datetime | None = Field(
        None, description="Earliest start if this alone were relaxed."
    )


class ExplanationView(BaseModel):
    blockers: list[BlockerView]
    earliest_after_range: datetime | None = Field(
        None, description="Earliest start past the requested range."
    )


class FindSlotResult(Tabular, BaseModel):
    windows: list[WindowView]
    explanation: ExplanationView | None = None
    search_start: datetime
    search_end: datetime
    calendar_generation: int
    candidates_tried: int
    cached: bool = False
    complete: bool = Field(
        True,
        description="False when the search's time budget (SLOTBROKER_FIND_SLOT_BUDGET_MS) ran out before "
        "the whole range was searched: the windows listed are real, but earlier ones may exist no later "
        "than searched_until and nothing is proven about the rest. Search again from searched_until, or "
        "ask for a find-slot job (POST /v1/find-slot/jobs), which has no budget.",
    )
    searched_until: datetime | None = Field(
        None, description="With complete false: the first start not yet examined."
    )

    def records(self) -> list[dict[str, Any]]:
        return [
            {
                "start": w.start,
                "end": w.end,
                "duration_s": w.duration_s,
                "sites": ", ".join(sorted(set(w.sites.values()))),
                "hosts": hosts(w.placement),
                "score": w.score,
            }
            for w in self.windows
        ]


class FindSlotJob(BaseModel):
    id: str
    status: Literal["pending", "running", "done", "failed"]
    created_at: datetime
    finished_at: datetime | None = None
    result: FindSlotResult | None = None
    error: dict[str, object] | None = None
