"""Links and facility ports. Both are providers underneath, so their bandwidth and VLAN tags are booked
through the same allocation rows and capacity check as compute.

``upsert_link`` and ``upsert_port`` run inside a caller's unit of work and are shared by the HTTP use
cases and the topology import.
"""

from __future__ import annotations

from uuid import UUID

from slotbroker.domain.errors import (
    AlreadyExists,
    ConcurrentUpdate,
    FieldError,
    InUse,
    NotFound,
    ValidationFailed,
)
from slotbroker.domain.inventory import Inventory
from slotbroker.domain.network import FacilityPortSpec, LinkSpec, facility_port_provider_name
from slotbroker.domain.providers import ProviderKind
from slotbroker.domain.vlans import VlanSet
from slotbroker.services.inventory import changes as ops
from slotbroker.services.inventory import presenters
from slotbroker.store.db import Database
from slotbroker.store.models import FacilityPortRow, LinkRow, ProviderRow
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire import providers as cmd
from slotbroker.wire import providers as views


def _site(uow: UnitOfWork, name: str, at: str) -> ProviderRow:
    row = uow.providers.get_by_name(name)
    if row is None or row.kind != ProviderKind.SITE:
        raise ValidationFailed(f"{name!r} is not a site", [FieldError(at, f"{name!r} is not a site")])
    return row


def upsert_link(uow: UnitOfWork, spec: LinkSpec, at: str = "") -> str:
    """Create or update a link by name; returns 'created', 'updated' or 'unchanged'."""
    a = _site(uow, spec.endpoints[0], f"{at}/endpoints/0")
    b = _site(uow, spec.endpoints[1], f"{at}/endpoints/1")
    row = uow.providers.get_by_name(spec.name)
    if row is not None and row.kind != ProviderKind.LINK:
        raise AlreadyExists(f"{spec.name!r} names a {row.kind}", [FieldError(f"{at}/name", "taken")])
    if row is None:
        row = ops.new_provider(uow, name=spec.name, kind=ProviderKind.LINK, parent=None)
        uow.network.add(
            LinkRow(provider_id=row.id, site_a_id=a.id, site_b_id=b.id, latency_ms=spec.latency_ms)
        )
        ops.apply_inventories(uow, row, {"BANDWIDTH_GBPS": Inventory(total=spec.bandwidth_gbps)}, at)
        return "created"
    link = uow.network.link(row.id)
    assert link is not None
    changed = False
    if (link.site_a_id, link.site_b_id) != (a.id, b.id):
        if uow.allocations.in_use(row.id):
            raise InUse(
                f"link {spec.name} carries bookings; its endpoints cannot move",
                [FieldError(f"{at}/endpoints", "in use")],
            )
        link.site_a_id, link.site_b_id, changed = a.id, b.id, True
    if link.latency_ms != spec.latency_ms:
        link.latency_ms, changed = spec.latency_ms, True
    bandwidth = {"BANDWIDTH_GBPS": Inventory(total=spec.bandwidth_gbps)}
    changed = ops.apply_inventories(uow, row, bandwidth, f"{at}/bandwidth_gbps") or changed
    if changed:
        uow.providers.bump_generation(row, row.generation)
    return "updated" if changed else "unchanged"


def upsert_port(uow: UnitOfWork, spec: FacilityPortSpec, at: str = "") -> str:
    site = _site(uow, spec.site, f"{at}/site")
    vlans = VlanSet.parse(spec.vlans)
    name = facility_port_provider_name(spec.site, spec.name)
    row = uow.providers.get_by_name(name)
    inventories = {
        "VLAN": Inventory(total=len(vlans)),
        "BANDWIDTH_GBPS": Inventory(total=spec.bandwidth_gbps),
    }
    if row is None:
        row = ops.new_provider(uow, name=name, kind=ProviderKind.FACILITY_PORT, parent=site)
        uow.network.add(
            FacilityPortRow(
                provider_id=row.id, site_id=site.id, port_name=spec.name, device=spec.device, vlans=str(vlans)
            )
        )
        ops.apply_inventories(uow, row, inventories, at)
        return "created"
    port = uow.network.port(row.id)
    assert port is not None
    changed = False
    if port.device != spec.device:
        port.device, changed = spec.device, True
    if port.vlans != str(vlans):
        _check_booked_tags(uow, row, vlans, f"{at}/vlans")
        port.vlans, changed = str(vlans), True
    changed = ops.apply_inventories(uow, row, inventories, at) or changed
    if changed:
        uow.providers.bump_generation(row, row.generation)
    return "updated" if changed else "unchanged"


def _check_booked_tags(uow: UnitOfWork, row: ProviderRow, vlans: VlanSet, at: str) -> None:
    booked = uow.allocations.booked_vlan_tags(row.id, after_s=ops.now_s())
    lost = sorted(t for t in booked if t not in vlans)
    if lost:
        raise InUse(
            f"VLAN tags {lost[:10]} are booked on {row.name}", [FieldError(at, "would drop booked tags")]
        )


class NetworkService:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def _link(uow: UnitOfWork, uuid: UUID) -> LinkRow:
        row = uow.providers.get(str(uuid))
        link = uow.network.link(row.id) if row is not None and row.kind == ProviderKind.LINK else None
        if link is None:
            raise NotFound(f"no link {uuid}")
        return link

    @staticmethod
    def _port(uow: UnitOfWork, uuid: UUID) -> FacilityPortRow:
        row = uow.providers.get(str(uuid))
        port = (
            uow.network.port(row.id) if row is not None and row.kind == ProviderKind.FACILITY_PORT else None
        )
        if port is None:
            raise NotFound(f"no facility port {uuid}")
        return port

    def links(self) -> list[views.LinkView]:
        with UnitOfWork(self.db, readonly=True) as uow:
            return [presenters.link_view(link) for link in uow.network.links()]

    def link(self, uuid: UUID) -> views.LinkView:
        with UnitOfWork(self.db, readonly=True) as uow:
            return presenters.link_view(self._link(uow, uuid))

    def create_link(self, body: cmd.CreateLink) -> views.LinkView:
        with UnitOfWork(self.db) as uow:
            if uow.providers.get_by_name(body.name) is not None:
                raise AlreadyExists(f"{body.name!r} is taken", [FieldError("/name", "taken")])
            upsert_link(uow, body)
            uow.calendar.bump()
            row = uow.providers.get_by_name(body.name)
            assert row is not None
            view = presenters.link_view(self._link(uow, UUID(row.uuid)))
            uow.commit()
            return view

    def update_link(self, uuid: UUID, body: cmd.UpdateLink) -> views.LinkView:
        with UnitOfWork(self.db) as uow:
            link = self._link(uow, uuid)
            current = presenters.link_view(link)
            _check(current.generation, body.generation)
            spec = LinkSpec(
                name=current.name,
                endpoints=current.endpoints,
                bandwidth_gbps=body.bandwidth_gbps
                if body.bandwidth_gbps is not None
                else current.bandwidth_gbps,
                latency_ms=body.latency_ms if body.latency_ms is not None else current.latency_ms,
            )
            if upsert_link(uow, spec) != "unchanged":
                uow.calendar.bump()
            uow.session.expire_all()
            view = presenters.link_view(self._link(uow, uuid))
            uow.commit()
            return view

    def delete_link(self, uuid: UUID) -> None:
        with UnitOfWork(self.db) as uow:
            link = self._link(uow, uuid)
            ops.ensure_deletable(uow, link.provider)
            uow.providers.delete(link.provider)
            uow.calendar.bump()
            uow.commit()

    def ports(self) -> list[views.FacilityPortView]:
        with UnitOfWork(self.db, readonly=True) as uow:
            return [presenters.port_view(p) for p in uow.network.ports()]

    def port(self, uuid: UUID) -> views.FacilityPortView:
        with UnitOfWork(self.db, readonly=True) as uow:
            return presenters.port_view(self._port(uow, uuid))

    def create_port(self, body: cmd.CreateFacilityPort) -> views.FacilityPortView:
        with UnitOfWork(self.db) as uow:
            name = facility_port_provider_name(body.site, body.name)
            if uow.providers.get_by_name(name) is not None:
                raise AlreadyExists(
                    f"port {body.name!r} exists at {body.site}", [FieldError("/name", "taken")]
                )
            upsert_port(uow, body)
            uow.calendar.bump()
            row = uow.providers.get_by_name(name)
            assert row is not None
            view = presenters.port_view(self._port(uow, UUID(row.uuid)))
            uow.commit()
            return view

    def update_port(self, uuid: UUID, body: cmd.UpdateFacilityPort) -> views.FacilityPortView:
        with UnitOfWork(self.db) as uow:
            current = presenters.port_view(self._port(uow, uuid))
            _check(current.generation, body.generation)
            try:
                spec = FacilityPortSpec(
                    name=current.name,
                    site=current.site,
                    device=body.device if "device" in body.model_fields_set else current.device,
                    vlans=body.vlans if body.vlans is not None else current.vlans,
                    bandwidth_gbps=body.bandwidth_gbps
                    if body.bandwidth_gbps is not None
                    else current.bandwidth_gbps,
                )
            except ValueError as exc:
                raise ValidationFailed("invalid VLAN ranges", [FieldError("/vlans", str(exc))]) from exc
            if upsert_port(uow, spec) != "unchanged":
                uow.calendar.bump()
            uow.session.expire_all()
            view = presenters.port_view(self._port(uow, uuid))
            uow.commit()
            return view

    def delete_port(self, uuid: UUID) -> None:
        with UnitOfWork(self.db) as uow:
            port = self._port(uow, uuid)
            ops.ensure_deletable(uow, port.provider)
            uow.providers.delete(port.provider)
            uow.calendar.bump()
            uow.commit()


def _check(current: int, seen: int) -> None:
    if current != seen:
        raise ConcurrentUpdate(
            f"generation {seen} is stale; current is {current}",
            [FieldError("/generation", f"stale generation {seen}; current is {current}")],
        )
