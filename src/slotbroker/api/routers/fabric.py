"""FABRIC-compatible endpoints: POST /calendar/find-slot and GET /calendar (see services/fabric_compat.py).

Validation errors here answer 400, as FABRIC's reports API does, with the same problem body as elsewhere.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from slotbroker.api.auth import Reader
from slotbroker.api.problems import responses
from slotbroker.api.routers.deps import Services, services
from slotbroker.domain.errors import FieldError, ValidationFailed
from slotbroker.engine import Bucket
from slotbroker.services import fabric_compat as fabric
from slotbroker.services.fabric_views import (
    FabricCalendar,
    FabricFindSlotRequest,
    FabricFindSlotResponse,
    FabricInterval,
    FabricUsage,
)
from slotbroker.services.find_slot_views import ts
from slotbroker.store.unit_of_work import UnitOfWork

PREFIX = "/calendar"
router = APIRouter(
    prefix=PREFIX, tags=["FABRIC compatibility"], responses=responses(400, 401, 413, 415, 429, 503)
)
Svc = Annotated[Services, Depends(services)]


@router.post(
    "/find-slot",
    response_model=FabricFindSlotResponse,
    summary="FABRIC reports API find-slot (resources of type compute, link, facility_port)",
)
def fabric_find_slot(body: FabricFindSlotRequest, who: Reader, svc: Svc) -> FabricFindSlotResponse:
    with UnitOfWork(svc.db, readonly=True) as uow:
        doc = fabric.to_native(body, uow)
    return fabric.to_fabric(svc.find_slot.find(doc), body.duration)


@router.get(
    "", response_model=FabricCalendar, summary="FABRIC reports API calendar (peak usage per interval)"
)
def fabric_calendar(
    who: Reader,
    svc: Svc,
    start_time: Annotated[str, Query(max_length=64)],
    end_time: Annotated[str, Query(max_length=64)],
    interval: Literal["hour", "day", "week"] = "day",
    site: Annotated[list[str] | None, Query()] = None,
    host: Annotated[list[str] | None, Query()] = None,
    exclude_site: Annotated[list[str] | None, Query()] = None,
    exclude_host: Annotated[list[str] | None, Query()] = None,
) -> FabricCalendar:
    start, end = (
        fabric.parse_instant(start_time, "start_time", where="#/query/start_time"),
        fabric.parse_instant(end_time, "end_time", where="#/query/end_time"),
    )
    if end <= start:
        raise ValidationFailed(
            "end_time must be after start_time", [FieldError("#/query/end_time", "not after start")]
        )
    view = svc.find_slot.calendar_view(
        int(start.timestamp()), int(end.timestamp()), Bucket(interval), frozenset({"host", "site"})
    )

    def keep_site(n: str) -> bool:
        return (not site or n in site) and n not in (exclude_site or [])

    host_site = svc.calendar.current().catalog.host_site

    def keep_host(n: str) -> bool:
        return keep_site(host_site.get(n, "")) and (not host or n in host) and n not in (exclude_host or [])

    data = []
    for b, s in enumerate(view.starts):
        groups: dict[str, dict[str, FabricUsage]] = {"site": {}, "host": {}}
        for row in view.rows:
            if (row.kind == "site" and not keep_site(row.name)) or (
                row.kind == "host" and not keep_host(row.name)
            ):
                continue
            u = groups[row.kind].setdefault(
                row.name, FabricUsage(name=row.name, capacity={}, allocated={}, available={})
            )
            u.capacity[row.resource_class] = row.capacity
            u.allocated[row.resource_class] = row.used[b]
            u.available[row.resource_class] = row.free[b]
        data.append(
            FabricInterval(
                start=ts(s),
                end=ts(s + view.bucket_s),
                sites=list(groups["site"].values()),
                hosts=list(groups["host"].values()),
            )
        )
    return FabricCalendar(start_time=start, end_time=end, interval=interval, data=data)
