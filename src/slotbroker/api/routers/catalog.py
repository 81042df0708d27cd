"""/v1/resource-classes, /v1/traits, /v1/aggregates: the vocabulary."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from slotbroker.api.auth import Admin, Reader
from slotbroker.api.problems import responses
from slotbroker.api.routers.deps import services
from slotbroker.bootstrap import Services
from slotbroker.wire import providers as cmd
from slotbroker.wire import providers as views

router = APIRouter(prefix="/v1", responses=responses(400, 401, 413, 415, 422, 429, 503))
Svc = Annotated[Services, Depends(services)]
RcName = Annotated[str, Path(pattern=r"^[A-Z][A-Z0-9_]{0,254}$")]
TraitName = Annotated[str, Path(pattern=r"^[A-Z][A-Z0-9_]{0,254}$")]


@router.get("/resource-classes", response_model=list[views.ResourceClassView], tags=["resource classes"])
def list_resource_classes(who: Reader, svc: Svc) -> list[views.ResourceClassView]:
    return svc.catalog.resource_classes()


@router.post(
    "/resource-classes",
    status_code=201,
    response_model=views.ResourceClassView,
    responses=responses(403, 409),
    tags=["resource classes"],
    summary="Register a CUSTOM_ class",
)
def create_resource_class(body: cmd.CreateResourceClass, who: Admin, svc: Svc) -> views.ResourceClassView:
    return svc.catalog.create_resource_class(body.name, body.description)


@router.get(
    "/resource-classes/{name}",
    response_model=views.ResourceClassView,
    responses=responses(404),
    tags=["resource classes"],
)
def get_resource_class(name: RcName, who: Reader, svc: Svc) -> views.ResourceClassView:
    return svc.catalog.resource_class(name)


@router.delete(
    "/resource-classes/{name}", status_code=204, responses=responses(403, 404, 409), tags=["resource classes"]
)
def delete_resource_class(name: RcName, who: Admin, svc: Svc) -> Response:
    svc.catalog.delete_resource_class(name)
    return Response(status_code=204)


@router.get("/traits", response_model=list[views.TraitView], tags=["traits"])
def list_traits(
    who: Reader, svc: Svc, custom: Annotated[bool, Query(description="Only custom traits")] = False
) -> list[views.TraitView]:
    return svc.catalog.traits(custom_only=custom)


@router.get("/traits/{name}", response_model=views.TraitView, responses=responses(404), tags=["traits"])
def get_trait(name: TraitName, who: Reader, svc: Svc) -> views.TraitView:
    return svc.catalog.trait(name)


@router.put(
    "/traits/{name}",
    response_model=views.TraitView,
    responses={**responses(403), 201: {"description": "Created", "model": views.TraitView}},
    tags=["traits"],
    summary="Register a CUSTOM_ trait",
)
def put_trait(name: TraitName, who: Admin, svc: Svc, response: Response) -> views.TraitView:
    view, created = svc.catalog.create_trait(name)
    response.status_code = 201 if created else 200
    return view


@router.delete("/traits/{name}", status_code=204, responses=responses(403, 404, 409), tags=["traits"])
def delete_trait(name: TraitName, who: Admin, svc: Svc) -> Response:
    svc.catalog.delete_trait(name)
    return Response(status_code=204)


@router.get("/aggregates", response_model=list[views.AggregateView], tags=["aggregates"])
def list_aggregates(who: Reader, svc: Svc) -> list[views.AggregateView]:
    return svc.catalog.aggregates()
