"""FABRIC-compatible endpoints: POST /calendar/find-slot and GET /calendar (services/protocols/fabric/).

Validation errors here answer 400, as FABRIC's reports API does, with the same problem body as elsewhere.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from slotbroker.api.auth import Reader
from slotbroker.api.problems import responses
from slotbroker.api.routers.deps import services
from slotbroker.bootstrap import Services
from slotbroker.domain.errors import FieldError, ValidationFailed
from slotbroker.domain.time import to_datetime
from slotbroker.engine import Bucket
from slotbroker.services.protocols.fabric import translate as fabric
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire.fabric import (
    FabricCalendar,
    FabricFindSlotRequest,
    FabricFindSlotResponse,
    FabricInterval,
    FabricUsage,
)

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
    try:
        found = svc.find_slot.find(doc)
    except ValidationFailed as exc:  # point into the FABRIC body, not the native document made from it
        raise ValidationFailed(
            exc.detail, [_fabric_pointer(f, body, doc) for f in exc.errors], exc.code
        ) from None
    return fabric.to_fabric(found, body.duration)


_TIME_FIELDS = {"/earliest_start": "/start", "/latest_end": "/end"}


def _fabric_pointer(error: FieldError, body: FabricFindSlotRequest, doc: dict[str, Any]) -> FieldError:
    """``/components/K/resources/CLASS`` of the native document -> ``/resources/I/components/MODEL``;
    the native time fields -> FABRIC's ``/start`` and ``/end``."""
    if error.pointer in _TIME_FIELDS:
        return FieldError(_TIME_FIELDS[error.pointer], error.detail)
    parts = error.pointer.split("/")
    if len(parts) != 5 or parts[1] != "components" or parts[3] != "resources" or not parts[2].isdigit():
        return error
    name = str(doc["components"][int(parts[2])]["name"])  # vm<I+1> for the I-th FABRIC resource
    index = int(name[2:]) - 1 if name.startswith("vm") and name[2:].isdigit() else -1
    models = (body.resources[index].components or {}) if 0 <= index < len(body.resources) else {}
    for model in models:
        if fabric.component_class(model) == parts[4]:
            return FieldError(f"/resources/{index}/components/{model}", error.detail)
    return error


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
                start=to_datetime(s),
                end=to_datetime(s + view.bucket_s),
                sites=list(groups["site"].values()),
                hosts=list(groups["host"].values()),
            )
        )
    return FabricCalendar(start_time=start, end_time=end, interval=interval, data=data)
