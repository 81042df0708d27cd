"""The find-slot, calendar, site and FABRIC endpoints, each described once as a
:class:`~slotbroker.client._spec.Call` builder (:mod:`slotbroker.client.endpoints` makes them methods)."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
from pydantic import BaseModel

from slotbroker.client._spec import (
    Call,
    Id,
    Instant,
    Raw,
    body,
    iso,
    model,
    path,
    query,
)
from slotbroker.client.retry import parse_retry_after
from slotbroker.wire.calendar import CalendarResponse
from slotbroker.wire.fabric import (
    FabricCalendar,
    FabricFindSlotRequest,
    FabricFindSlotResponse,
    FabricResource,
)
from slotbroker.wire.find_slot import FindSlotJob, FindSlotResult

# -- find-slot and calendar ------------------------------------------------------------------------------


def _result_or_job(response: httpx.Response) -> FindSlotResult | FindSlotJob:
    if response.status_code == 202:
        return FindSlotJob.model_validate_json(response.content)
    return FindSlotResult.model_validate_json(response.content)


def find_slot(request: Raw | BaseModel, *, prefer_async: bool = False) -> Call[FindSlotResult | FindSlotJob]:
    """Windows where ``request`` fits (a ``FindSlotResult``), or a ``FindSlotJob`` to poll when the server
    runs it in the background (``prefer_async=True``, or an expensive request); see ``wait_find_slot``."""
    return Call(
        "POST",
        "/v1/find-slot",
        _result_or_job,
        json=body(request),
        headers={"Prefer": "respond-async"} if prefer_async else None,
    )


def find_slot_job(job_id: Id) -> Call[FindSlotJob]:
    """A find-slot job's state (404 for another project's job unless you are an admin)."""
    return Call("GET", path("/v1/find-slot/jobs/{}", job_id), model(FindSlotJob))


def poll_find_slot_job(job_id: Id) -> Call[tuple[FindSlotJob, float | None]]:
    """``find_slot_job`` plus the server's ``Retry-After`` (seconds), for ``wait_find_slot``."""

    def decode(response: httpx.Response) -> tuple[FindSlotJob, float | None]:
        job = FindSlotJob.model_validate_json(response.content)
        return job, parse_retry_after(response.headers.get("Retry-After"))

    return Call("GET", path("/v1/find-slot/jobs/{}", job_id), decode)


def calendar(
    start: Instant,
    end: Instant,
    resolution: str = "day",
    kind: Sequence[str] | None = None,
    name: Sequence[str] | None = None,
    resource_class: Sequence[str] | None = None,
) -> Call[CalendarResponse]:
    """Capacity, peak usage and free per provider and class in ``hour``/``day``/``week`` buckets."""
    params = query(
        start=iso(start),
        end=iso(end),
        resolution=resolution,
        kind=list(kind) if kind is not None else None,
        name=list(name) if name is not None else None,
        resource_class=list(resource_class) if resource_class is not None else None,
    )
    return Call("GET", "/v1/calendar", model(CalendarResponse), params=params)


def fabric_find_slot(request: FabricFindSlotRequest | Raw) -> Call[FabricFindSlotResponse]:
    """FABRIC reports API find-slot (``POST /calendar/find-slot``)."""
    return Call("POST", "/calendar/find-slot", model(FabricFindSlotResponse), json=body(request))


def find_available_slot(
    start: Instant,
    end: Instant,
    duration: int,
    resources: Sequence[FabricResource | Raw],
    max_results: int = 1,
) -> Call[FabricFindSlotResponse]:
    """FABlib-style find-slot with FABRIC's argument names: windows of ``duration`` hours between ``start``
    and ``end`` where every resource fits, e.g. ``resources=[{"type": "compute", "site": "STAR",
    "cores": 8, "ram": 32, "components": {"GPU_A30": 1}}]``; ``max_results`` windows at most."""
    return fabric_find_slot(
        {
            "start": iso(start),
            "end": iso(end),
            "duration": duration,
            "resources": [body(r) for r in resources],
            "max_results": max_results,
        }
    )


def fabric_calendar(
    start_time: Instant,
    end_time: Instant,
    interval: str = "day",
    site: Sequence[str] | None = None,
    host: Sequence[str] | None = None,
    exclude_site: Sequence[str] | None = None,
    exclude_host: Sequence[str] | None = None,
) -> Call[FabricCalendar]:
    """FABRIC reports API calendar (``GET /calendar``): per interval, sites and hosts with peak usage."""
    params = query(
        start_time=iso(start_time),
        end_time=iso(end_time),
        interval=interval,
        site=list(site) if site is not None else None,
        host=list(host) if host is not None else None,
        exclude_site=list(exclude_site) if exclude_site is not None else None,
        exclude_host=list(exclude_host) if exclude_host is not None else None,
    )
    return Call("GET", "/calendar", model(FabricCalendar), params=params)
