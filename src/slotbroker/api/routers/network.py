"""/v1/links and /v1/facility-ports."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Response

from slotbroker.api.auth import Manager, Reader
from slotbroker.api.problems import responses
from slotbroker.api.routers.deps import services
from slotbroker.bootstrap import Services
from slotbroker.wire import providers as cmd
from slotbroker.wire import providers as views

router = APIRouter(prefix="/v1", responses=responses(400, 401, 413, 415, 422, 429, 503))
Svc = Annotated[Services, Depends(services)]


@router.get("/links", response_model=list[views.LinkView], tags=["links"])
def list_links(who: Reader, svc: Svc) -> list[views.LinkView]:
    return svc.network.links()


@router.post(
    "/links", status_code=201, response_model=views.LinkView, responses=responses(403, 409), tags=["links"]
)
def create_link(body: cmd.CreateLink, who: Manager, svc: Svc) -> views.LinkView:
    return svc.network.create_link(body)


@router.get("/links/{uuid}", response_model=views.LinkView, responses=responses(404), tags=["links"])
def get_link(uuid: UUID, who: Reader, svc: Svc) -> views.LinkView:
    return svc.network.link(uuid)


@router.put(
    "/links/{uuid}", response_model=views.LinkView, responses=responses(403, 404, 409), tags=["links"]
)
def update_link(uuid: UUID, body: cmd.UpdateLink, who: Manager, svc: Svc) -> views.LinkView:
    return svc.network.update_link(uuid, body)


@router.delete("/links/{uuid}", status_code=204, responses=responses(403, 404, 409), tags=["links"])
def delete_link(uuid: UUID, who: Manager, svc: Svc) -> Response:
    svc.network.delete_link(uuid)
    return Response(status_code=204)


@router.get("/facility-ports", response_model=list[views.FacilityPortView], tags=["facility ports"])
def list_ports(who: Reader, svc: Svc) -> list[views.FacilityPortView]:
    return svc.network.ports()


@router.post(
    "/facility-ports",
    status_code=201,
    response_model=views.FacilityPortView,
    responses=responses(403, 409),
    tags=["facility ports"],
)
def create_port(body: cmd.CreateFacilityPort, who: Manager, svc: Svc) -> views.FacilityPortView:
    return svc.network.create_port(body)


@router.get(
    "/facility-ports/{uuid}",
    response_model=views.FacilityPortView,
    responses=responses(404),
    tags=["facility ports"],
)
def get_port(uuid: UUID, who: Reader, svc: Svc) -> views.FacilityPortView:
    return svc.network.port(uuid)


@router.put(
    "/facility-ports/{uuid}",
    response_model=views.FacilityPortView,
    responses=responses(403, 404, 409),
    tags=["facility ports"],
)
def update_port(uuid: UUID, body: cmd.UpdateFacilityPort, who: Manager, svc: Svc) -> views.FacilityPortView:
    return svc.network.update_port(uuid, body)


@router.delete(
    "/facility-ports/{uuid}", status_code=204, responses=responses(403, 404, 409), tags=["facility ports"]
)
def delete_port(uuid: UUID, who: Manager, svc: Svc) -> Response:
    svc.network.delete_port(uuid)
    return Response(status_code=204)
