"""The health, inventory, catalog, network, topology and site-summary endpoints, each described once as a
:class:`~slotbroker.client._spec.Call` builder (:mod:`slotbroker.client.endpoints` makes them methods)."""

from __future__ import annotations

from collections.abc import Sequence

from slotbroker.client._spec import (
    Call,
    Id,
    Raw,
    body,
    list_of,
    model,
    no_content,
    path,
    query,
    text,
)
from slotbroker.domain.providers import ProviderKind
from slotbroker.domain.topology import Topology
from slotbroker.wire import providers as cmd
from slotbroker.wire import providers as views
from slotbroker.wire.health import Health, Ready
from slotbroker.wire.sites import SiteList


# -- health ----------------------------------------------------------------------------------------------
def healthz() -> Call[Health]:
    """Liveness probe."""
    return Call("GET", "/healthz", model(Health))


def readyz() -> Call[Ready]:
    """Readiness probe: raises UnavailableError at once (never retried) when not ready."""
    return Call("GET", "/readyz", model(Ready), retry=False)


def metrics() -> Call[str]:
    """Prometheus metrics, as text."""
    return Call("GET", "/metrics", text)


# -- providers -------------------------------------------------------------------------------------------
def list_providers(
    *,
    kind: Sequence[ProviderKind | str] | None = None,
    parent: Id | None = None,
    trait: Sequence[str] | None = None,
    member_of: Sequence[str] | None = None,
    name: str | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> Call[views.ProviderList]:
    """One page of providers; pass ``next_cursor`` back as ``cursor`` for the next."""
    params = query(
        kind=list(kind) if kind is not None else None,
        parent=parent,
        trait=list(trait) if trait is not None else None,
        member_of=list(member_of) if member_of is not None else None,
        name=name,
        cursor=cursor,
        limit=limit,
    )
    return Call("GET", "/v1/providers", model(views.ProviderList), params=params)


def get_provider(uuid: Id) -> Call[views.ProviderView]:
    return Call("GET", path("/v1/providers/{}", uuid), model(views.ProviderView))


def create_provider(provider: cmd.CreateProvider | Raw) -> Call[views.ProviderView]:
    return Call("POST", "/v1/providers", model(views.ProviderView), json=body(provider))


def update_provider(uuid: Id, change: cmd.UpdateProvider | Raw) -> Call[views.ProviderView]:
    """Rename, move or relocate; ``change.generation`` must be the one you read."""
    return Call("PUT", path("/v1/providers/{}", uuid), model(views.ProviderView), json=body(change))


def delete_provider(uuid: Id) -> Call[None]:
    return Call("DELETE", path("/v1/providers/{}", uuid), no_content)


def get_inventories(uuid: Id) -> Call[views.InventoriesView]:
    return Call("GET", path("/v1/providers/{}/inventories", uuid), model(views.InventoriesView))


def set_inventories(uuid: Id, inventories: cmd.SetInventories | Raw) -> Call[views.InventoriesView]:
    """Replace all inventories (compare-and-swap on generation)."""
    return Call(
        "PUT",
        path("/v1/providers/{}/inventories", uuid),
        model(views.InventoriesView),
        json=body(inventories),
    )


def set_inventory(
    uuid: Id, resource_class: str, inventory: cmd.SetInventory | Raw
) -> Call[views.InventoriesView]:
    """Set one inventory (compare-and-swap on generation)."""
    return Call(
        "PUT",
        path("/v1/providers/{}/inventories/{}", uuid, resource_class),
        model(views.InventoriesView),
        json=body(inventory),
    )


def delete_inventory(uuid: Id, resource_class: str, *, generation: int) -> Call[views.InventoriesView]:
    """Remove one inventory; ``generation`` is the provider generation you read."""
    return Call(
        "DELETE",
        path("/v1/providers/{}/inventories/{}", uuid, resource_class),
        model(views.InventoriesView),
        params=query(generation=generation),
    )


def get_provider_traits(uuid: Id) -> Call[views.NamesView]:
    return Call("GET", path("/v1/providers/{}/traits", uuid), model(views.NamesView))


def set_provider_traits(uuid: Id, names: cmd.SetNames | Raw) -> Call[views.NamesView]:
    return Call("PUT", path("/v1/providers/{}/traits", uuid), model(views.NamesView), json=body(names))


def get_provider_aggregates(uuid: Id) -> Call[views.NamesView]:
    return Call("GET", path("/v1/providers/{}/aggregates", uuid), model(views.NamesView))


def set_provider_aggregates(uuid: Id, names: cmd.SetNames | Raw) -> Call[views.NamesView]:
    return Call("PUT", path("/v1/providers/{}/aggregates", uuid), model(views.NamesView), json=body(names))


# -- catalog ---------------------------------------------------------------------------------------------
def list_resource_classes() -> Call[list[views.ResourceClassView]]:
    return Call("GET", "/v1/resource-classes", list_of(views.ResourceClassView))


def get_resource_class(name: str) -> Call[views.ResourceClassView]:
    return Call("GET", path("/v1/resource-classes/{}", name), model(views.ResourceClassView))


def create_resource_class(
    resource_class: cmd.CreateResourceClass | Raw,
) -> Call[views.ResourceClassView]:
    """Register a ``CUSTOM_`` resource class (admin)."""
    return Call("POST", "/v1/resource-classes", model(views.ResourceClassView), json=body(resource_class))


def delete_resource_class(name: str) -> Call[None]:
    return Call("DELETE", path("/v1/resource-classes/{}", name), no_content)


def list_traits(*, custom: bool = False) -> Call[list[views.TraitView]]:
    return Call("GET", "/v1/traits", list_of(views.TraitView), params=query(custom=custom or None))


def get_trait(name: str) -> Call[views.TraitView]:
    return Call("GET", path("/v1/traits/{}", name), model(views.TraitView))


def put_trait(name: str) -> Call[views.TraitView]:
    """Register a ``CUSTOM_`` trait (admin); putting an existing one changes nothing."""
    return Call("PUT", path("/v1/traits/{}", name), model(views.TraitView))


def delete_trait(name: str) -> Call[None]:
    return Call("DELETE", path("/v1/traits/{}", name), no_content)


def list_aggregates() -> Call[list[views.AggregateView]]:
    return Call("GET", "/v1/aggregates", list_of(views.AggregateView))


# -- network ---------------------------------------------------------------------------------------------
def list_links() -> Call[list[views.LinkView]]:
    return Call("GET", "/v1/links", list_of(views.LinkView))


def get_link(uuid: Id) -> Call[views.LinkView]:
    return Call("GET", path("/v1/links/{}", uuid), model(views.LinkView))


def create_link(link: cmd.CreateLink | Raw) -> Call[views.LinkView]:
    return Call("POST", "/v1/links", model(views.LinkView), json=body(link))


def update_link(uuid: Id, change: cmd.UpdateLink | Raw) -> Call[views.LinkView]:
    return Call("PUT", path("/v1/links/{}", uuid), model(views.LinkView), json=body(change))


def delete_link(uuid: Id) -> Call[None]:
    return Call("DELETE", path("/v1/links/{}", uuid), no_content)


def list_facility_ports() -> Call[list[views.FacilityPortView]]:
    return Call("GET", "/v1/facility-ports", list_of(views.FacilityPortView))


def get_facility_port(uuid: Id) -> Call[views.FacilityPortView]:
    return Call("GET", path("/v1/facility-ports/{}", uuid), model(views.FacilityPortView))


def create_facility_port(port: cmd.CreateFacilityPort | Raw) -> Call[views.FacilityPortView]:
    return Call("POST", "/v1/facility-ports", model(views.FacilityPortView), json=body(port))


def update_facility_port(uuid: Id, change: cmd.UpdateFacilityPort | Raw) -> Call[views.FacilityPortView]:
    return Call("PUT", path("/v1/facility-ports/{}", uuid), model(views.FacilityPortView), json=body(change))


def delete_facility_port(uuid: Id) -> Call[None]:
    return Call("DELETE", path("/v1/facility-ports/{}", uuid), no_content)


# -- topology --------------------------------------------------------------------------------------------
def export_topology() -> Call[Topology]:
    return Call("GET", "/v1/topology", model(Topology))


def import_topology(document: Topology | Raw, *, prune: bool = False) -> Call[views.ImportReport]:
    """Import atomically; ``prune`` also deletes what the document omits."""
    return Call(
        "POST",
        "/v1/topology",
        model(views.ImportReport),
        json=body(document),
        params=query(prune=prune or None),
    )


# -- sites -----------------------------------------------------------------------------------------------
def list_sites() -> Call[SiteList]:
    """Every site's capacity per class, what is free now and its hosts, links and ports."""
    return Call("GET", "/v1/sites", model(SiteList))
