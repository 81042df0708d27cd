"""FABRIC-compatible endpoints: the reports API's ``POST /calendar/find-slot`` and ``GET /calendar``, and
the orchestrator's ``POST /resources/find-slot`` and ``GET /resources/calendar`` (the same answers in
its ``{data, size, type}`` envelope), so FABlib pointed at slotbroker works unchanged. The rules are in
services/protocols/fabric/; validation errors answer 400, as FABRIC does.
"""

from __future__ import annotations

import functools
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from slotbroker.api.auth import Reader
from slotbroker.api.problems import responses
from slotbroker.api.routers.deps import Lane, services
from slotbroker.bootstrap import Services
from slotbroker.services.protocols.fabric.calendar import Filters
from slotbroker.services.protocols.fabric.translate import parse_instant
from slotbroker.wire.fabric import (
    FabricCalendar,
    FabricFindSlotRequest,
    FabricFindSlotResponse,
    OrchestratorCalendar,
    OrchestratorFindSlot,
)

_ERRORS = responses(400, 401, 413, 415, 429, 503)
# One router without a prefix: the reports API's paths live under /calendar, the orchestrator's under
# /resources.
router = APIRouter(tags=["FABRIC compatibility"], responses=_ERRORS)
Svc = Annotated[Services, Depends(services)]
Names = Annotated[list[str] | None, Query()]
Interval = Literal["hour", "day", "week"]


async def _find(body: FabricFindSlotRequest, svc: Services, lane: Lane) -> FabricFindSlotResponse:
    """A search, run where find-slot's run (``api/find_slot_lane.py``): in arrival order with them."""
    return await lane.run(functools.partial(svc.fabric_find_slot.find, body))


def _calendar(
    svc: Services, start: str, end: str, interval: str, filters: Filters, names: tuple[str, str]
) -> FabricCalendar:
    s = parse_instant(start, names[0], where=f"#/query/{names[0]}")
    e = parse_instant(end, names[1], where=f"#/query/{names[1]}")
    return svc.fabric_calendar.calendar_of(s, e, interval, filters, names=names)


@router.post(
    "/calendar/find-slot",
    response_model=FabricFindSlotResponse,
    response_model_exclude_none=True,
    summary="FABRIC reports API find-slot (resources of type compute, link, facility_port)",
)
async def fabric_find_slot(
    body: FabricFindSlotRequest, who: Reader, svc: Svc, lane: Lane
) -> FabricFindSlotResponse:
    return await _find(body, svc, lane)


@router.get(
    "/calendar",
    response_model=FabricCalendar,
    response_model_exclude_none=True,
    summary="FABRIC reports API calendar (peak usage per interval)",
)
def fabric_calendar(
    who: Reader,
    svc: Svc,
    start_time: Annotated[str, Query(max_length=64)],
    end_time: Annotated[str, Query(max_length=64)],
    interval: Interval = "day",
    site: Names = None,
    host: Names = None,
    exclude_site: Names = None,
    exclude_host: Names = None,
) -> FabricCalendar:
    filters = Filters(site or (), host or (), exclude_site or (), exclude_host or ())
    return _calendar(svc, start_time, end_time, interval, filters, ("start_time", "end_time"))


@router.post(
    "/resources/find-slot",
    response_model=OrchestratorFindSlot,
    response_model_exclude_none=True,
    summary="FABRIC orchestrator find-slot (the reports API's answer in {data, size, type})",
)
async def orchestrator_find_slot(
    body: FabricFindSlotRequest, who: Reader, svc: Svc, lane: Lane
) -> OrchestratorFindSlot:
    return OrchestratorFindSlot(data=[await _find(body, svc, lane)], size=1)


@router.get(
    "/resources/calendar",
    response_model=OrchestratorCalendar,
    response_model_exclude_none=True,
    summary="FABRIC orchestrator calendar (the reports API's answer in {data, size, type})",
)
def orchestrator_calendar(
    who: Reader,
    svc: Svc,
    start_date: Annotated[str, Query(max_length=64)],
    end_date: Annotated[str, Query(max_length=64)],
    interval: Interval = "day",
    site: Names = None,
    host: Names = None,
    exclude_site: Names = None,
    exclude_host: Names = None,
    site_list: Annotated[list[str] | None, Query(alias="site[]")] = None,
    host_list: Annotated[list[str] | None, Query(alias="host[]")] = None,
    exclude_site_list: Annotated[list[str] | None, Query(alias="exclude_site[]")] = None,
    exclude_host_list: Annotated[list[str] | None, Query(alias="exclude_host[]")] = None,
) -> OrchestratorCalendar:
    """FABlib's client sends the lists as ``site[]=...``; the orchestrator's OpenAPI names them ``site``."""
    filters = Filters(
        [*(site or ()), *(site_list or ())],
        [*(host or ()), *(host_list or ())],
        [*(exclude_site or ()), *(exclude_site_list or ())],
        [*(exclude_host or ()), *(exclude_host_list or ())],
    )
    cal = _calendar(svc, start_date, end_date, interval, filters, ("start_date", "end_date"))
    return OrchestratorCalendar(data=[cal], size=1)
