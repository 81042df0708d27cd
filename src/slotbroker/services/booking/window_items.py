"""A find-slot window as the concrete items a claim books, written once for offers and allocation
requests.

Per component instance, its host's amounts: the request's minimum, raised to the elastic grant on the
host the window chose. An instance moved to an alternate host claims the minimum: the engine checked
alternates for the minimum only (the grant was cut from the chosen host's free capacity), so carrying
the grant over could refuse an alternate the request fits on. Then ``BANDWIDTH_GBPS`` on every link of
every route, and per facility port each VLAN tag (class ``VLAN``, amount 1, with the tag), its
bandwidth and that bandwidth on every link of the port's route, as the engine counts them.

Items name providers (hosts and links by name, ports by site and port); each caller resolves the
names to uuids its own way.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from slotbroker.domain.request import Component, SlotRequest
from slotbroker.domain.resource_classes import Standard
from slotbroker.wire.find_slot import WindowView


@dataclass(frozen=True)
class Owner:
    """The instance a host item belongs to: alternates swap hosts by it."""

    component: str
    instance: int


@dataclass(frozen=True)
class WindowItem:
    """One item of a window: ``provider`` is a host or link name, or ``site/port`` for a facility port
    (then ``port`` is ``(site, port)``); ``owner`` is None for link and port items."""

    provider: str
    resource_class: str
    amount: int
    vlan_tag: int | None = None
    port: tuple[str, str] | None = None
    owner: Owner | None = None


def instance_amounts(comp: Component, grant: Mapping[str, int] | None) -> dict[str, int]:
    """One instance's amounts: the minimum, with ``grant`` (the elastic amounts granted on the chosen
    host; None on an alternate) over it."""
    return {**comp.minimum(), **(grant or {})}


def grant_of(window: WindowView, component: str, instance: int) -> dict[str, int] | None:
    grants = window.grants.get(component, [])
    return grants[instance] if instance < len(grants) else None


def host_items(
    req: SlotRequest,
    window: WindowView,
    placement: Mapping[str, list[str]] | None = None,
    swapped: Collection[tuple[str, int]] = (),
) -> list[WindowItem]:
    """Each instance's amounts on its host (``placement`` defaults to the window's); the instances in
    ``swapped`` (component, index) sit on an alternate and claim the minimum."""
    placement = window.placement if placement is None else placement
    items: list[WindowItem] = []
    for comp in req.components:
        for k, host in enumerate(placement.get(comp.name, [])):
            grant = None if (comp.name, k) in swapped else grant_of(window, comp.name, k)
            for rc, amount in sorted(instance_amounts(comp, grant).items()):
                items.append(WindowItem(host, rc, amount, owner=Owner(comp.name, k)))
    return items


def shared_items(req: SlotRequest, window: WindowView) -> list[WindowItem]:
    """Everything fixed whatever host is chosen: route links, port VLAN tags and bandwidth."""
    bandwidth = Standard.BANDWIDTH_GBPS.value
    items: list[WindowItem] = []
    for lk, route in zip(req.links, window.routes, strict=False):
        items.extend(WindowItem(link, bandwidth, lk.bandwidth_gbps) for link in route.links)
    for pr, pv in zip(req.facility_ports, window.ports, strict=False):
        where, label = (pv.site, pv.port), f"{pv.site}/{pv.port}"
        items.extend(WindowItem(label, Standard.VLAN.value, 1, int(tag), port=where) for tag in pv.vlans)
        if pr.bandwidth_gbps:
            items.append(WindowItem(label, bandwidth, pr.bandwidth_gbps, port=where))
            items.extend(WindowItem(link, bandwidth, pr.bandwidth_gbps) for link in pv.links)
    return items


def window_items(
    req: SlotRequest,
    window: WindowView,
    placement: Mapping[str, list[str]] | None = None,
    swapped: Collection[tuple[str, int]] = (),
) -> list[WindowItem]:
    """The host items, then the shared ones: what one claim of the window books."""
    return host_items(req, window, placement, swapped) + shared_items(req, window)
