"""/v1/providers: the provider tree, its inventories, traits and aggregates."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Response

from slotbroker.api.auth import Manager, Reader
from slotbroker.api.problems import responses
from slotbroker.api.routers.deps import services
from slotbroker.bootstrap import Services
from slotbroker.domain.providers import ProviderKind
from slotbroker.wire import providers as cmd
from slotbroker.wire import providers as views

router = APIRouter(
    prefix="/v1/providers", tags=["providers"], responses=responses(400, 401, 413, 415, 422, 429, 503)
)
Svc = Annotated[Services, Depends(services)]
RC_PATH = r"^[A-Z][A-Z0-9_]{0,254}$"


@router.get("", response_model=views.ProviderList, summary="List providers")
def list_providers(
    who: Reader,
    svc: Svc,
    kind: Annotated[
        list[ProviderKind] | None, Query(description="Any of these kinds; default the tree kinds")
    ] = None,
    parent: Annotated[UUID | None, Query(description="Only children of this provider")] = None,
    trait: Annotated[list[str] | None, Query(description="Has all these traits")] = None,
    member_of: Annotated[list[str] | None, Query(description="Member of any of these aggregates")] = None,
    name: Annotated[str | None, Query(max_length=200)] = None,
    cursor: Annotated[
        str | None, Query(max_length=200, description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> views.ProviderList:
    return svc.inventory.list_providers(
        kinds=kind,
        parent_uuid=parent,
        traits=trait,
        aggregates=member_of,
        name=name,
        cursor=cursor,
        limit=limit,
    )


@router.post(
    "",
    status_code=201,
    response_model=views.ProviderView,
    responses=responses(403, 409),
    summary="Create a provider",
)
def create_provider(
    body: cmd.CreateProvider, who: Manager, svc: Svc, response: Response
) -> views.ProviderView:
    view = svc.inventory.create_provider(body)
    response.headers["Location"] = f"/v1/providers/{view.uuid}"
    return view


@router.get("/{uuid}", response_model=views.ProviderView, responses=responses(404))
def get_provider(uuid: UUID, who: Reader, svc: Svc) -> views.ProviderView:
    return svc.inventory.get_provider(uuid)


@router.put(
    "/{uuid}",
    response_model=views.ProviderView,
    responses=responses(403, 404, 409),
    summary="Rename, move or relocate a provider, or set its attributes",
)
def update_provider(uuid: UUID, body: cmd.UpdateProvider, who: Manager, svc: Svc) -> views.ProviderView:
    return svc.inventory.update_provider(uuid, body)


@router.delete("/{uuid}", status_code=204, responses=responses(403, 404, 409))
def delete_provider(uuid: UUID, who: Manager, svc: Svc) -> Response:
    svc.inventory.delete_provider(uuid)
    return Response(status_code=204)


@router.get("/{uuid}/inventories", response_model=views.InventoriesView, responses=responses(404))
def get_inventories(uuid: UUID, who: Reader, svc: Svc) -> views.InventoriesView:
    return svc.inventory.get_inventories(uuid)


@router.put(
    "/{uuid}/inventories",
    response_model=views.InventoriesView,
    responses=responses(403, 404, 409),
    summary="Replace all inventories (compare-and-swap on generation)",
)
def set_inventories(uuid: UUID, body: cmd.SetInventories, who: Manager, svc: Svc) -> views.InventoriesView:
    return svc.inventory.set_inventories(uuid, body)


@router.put(
    "/{uuid}/inventories/{resource_class}",
    response_model=views.InventoriesView,
    responses=responses(403, 404, 409),
    summary="Set one inventory",
)
def set_inventory(
    uuid: UUID,
    resource_class: Annotated[str, Path(pattern=RC_PATH)],
    body: cmd.SetInventory,
    who: Manager,
    svc: Svc,
) -> views.InventoriesView:
    return svc.inventory.set_inventory(uuid, resource_class, body)


@router.delete(
    "/{uuid}/inventories/{resource_class}",
    response_model=views.InventoriesView,
    responses=responses(403, 404, 409),
    summary="Remove one inventory",
)
def delete_inventory(
    uuid: UUID,
    resource_class: Annotated[str, Path(pattern=RC_PATH)],
    who: Manager,
    svc: Svc,
    generation: Annotated[int, Query(ge=0, description="The provider generation you read")],
) -> views.InventoriesView:
    return svc.inventory.delete_inventory(uuid, resource_class, generation)


@router.get("/{uuid}/traits", response_model=views.NamesView, responses=responses(404))
def get_traits(uuid: UUID, who: Reader, svc: Svc) -> views.NamesView:
    return svc.inventory.provider_traits(uuid)


@router.put("/{uuid}/traits", response_model=views.NamesView, responses=responses(403, 404, 409))
def set_traits(uuid: UUID, body: cmd.SetNames, who: Manager, svc: Svc) -> views.NamesView:
    return svc.inventory.set_provider_traits(uuid, body)


@router.get("/{uuid}/aggregates", response_model=views.NamesView, responses=responses(404))
def get_aggregates(uuid: UUID, who: Reader, svc: Svc) -> views.NamesView:
    return svc.inventory.provider_aggregates(uuid)


@router.put("/{uuid}/aggregates", response_model=views.NamesView, responses=responses(403, 404, 409))
def set_aggregates(uuid: UUID, body: cmd.SetNames, who: Manager, svc: Svc) -> views.NamesView:
    return svc.inventory.set_provider_aggregates(uuid, body)
