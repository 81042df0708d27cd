"""Import and export of whole topology documents (docs/topology-format.md).

Import is one transaction: it validates everything first (every problem with its JSON pointer), then
upserts by name and touches only what differs, so importing an exported document changes nothing — no
generation moves. With ``prune`` it also deletes tree providers, links and ports the document omits.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from slotbroker.domain.errors import AlreadyExists, FieldError, ValidationFailed, pointer
from slotbroker.domain.network import FacilityPortSpec, LinkSpec, facility_port_provider_name
from slotbroker.domain.providers import TREE_KINDS, Location
from slotbroker.domain.resource_classes import ClassKind
from slotbroker.domain.topology import ProviderNode, Registry, ResourceClassSpec, Topology, validate_topology
from slotbroker.services.inventory import changes as ops
from slotbroker.services.inventory import presenters
from slotbroker.services.inventory.network import upsert_link, upsert_port
from slotbroker.store.db import Database
from slotbroker.store.models import ProviderRow
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire import providers as views


class TopologyService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def import_(self, doc: Topology, *, prune: bool = False) -> views.ImportReport:
        with UnitOfWork(self.db) as uow:
            report = import_into(uow, doc, prune=prune)
            uow.commit()
            return report

    def export(self) -> Topology:
        with UnitOfWork(self.db, readonly=True) as uow:
            return export_from(uow)


def check_size(raw: Any, cap: int) -> None:
    """Refuse a document (parsed JSON, not yet validated) with a list or map of more than ``cap``
    entries, or more than ``cap`` providers in its tree: validating and importing it would hold a worker
    for minutes, and reporting a problem for each of a million bad entries costs as much again."""
    problems: list[FieldError] = []
    providers = 0
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), raw)]
    while stack:
        at, value = stack.pop()
        if not isinstance(value, list | dict):
            continue
        if len(value) > cap:
            problems.append(FieldError(pointer(*at), f"more than {cap} entries"))
            continue
        if isinstance(value, list):
            if at == ("providers",) or at[-1:] == ("children",):
                providers += len(value)
            stack.extend(((*at, i), v) for i, v in enumerate(value))
        else:
            stack.extend(((*at, k), v) for k, v in value.items())
    if providers > cap:
        problems.append(FieldError("/providers", f"more than {cap} providers, children included"))
    if problems:
        raise ValidationFailed(
            "the topology document is too large", sorted(problems, key=lambda p: p.pointer)
        )


def import_into(uow: UnitOfWork, doc: Topology, *, prune: bool = False) -> views.ImportReport:
    registry = Registry(uow.catalog.custom_class_names(), uow.catalog.custom_trait_names())
    validate_topology(doc, registry)
    counts = {"created": 0, "updated": 0, "unchanged": 0, "deleted": 0}

    catalog_changed = False
    for rc in doc.resource_classes:
        existing = uow.catalog.resource_class(rc.name)
        if existing is None:
            uow.catalog.add_resource_class(rc.name, ClassKind.CUSTOM.value, rc.description)
            catalog_changed = True
        elif existing.description != rc.description:
            existing.description = rc.description
    for trait in doc.traits:
        if uow.catalog.trait(trait) is None:
            uow.catalog.add_trait(trait)
            catalog_changed = True

    seen: set[str] = set()
    rows: dict[str, ProviderRow] = {}
    for node, parent, at in doc.walk():
        parent_row = rows[parent.name] if parent else None
        outcome, rows[node.name] = _upsert_provider(uow, node, parent_row, at)
        counts[outcome] += 1
        seen.add(node.name)
    for i, link in enumerate(doc.links):
        counts[upsert_link(uow, link, f"/links/{i}")] += 1
        seen.add(link.name)
    for i, port in enumerate(doc.facility_ports):
        counts[upsert_port(uow, port, f"/facility_ports/{i}")] += 1
        seen.add(facility_port_provider_name(port.site, port.name))
    if prune:
        counts["deleted"] = _prune(uow, seen)
    if catalog_changed or counts["created"] or counts["updated"] or counts["deleted"]:
        uow.calendar.bump()
    uow.session.flush()
    return views.ImportReport(**counts, calendar_generation=uow.calendar.generation())


def _upsert_provider(
    uow: UnitOfWork, node: ProviderNode, parent: ProviderRow | None, at: str
) -> tuple[str, ProviderRow]:
    row = uow.providers.get(str(node.uuid)) if node.uuid else None
    if row is None:
        row = uow.providers.get_by_name(node.name)
    if row is None:
        row = ops.new_provider(
            uow,
            name=node.name,
            kind=node.kind,
            parent=parent,
            uuid=str(node.uuid) if node.uuid else None,
            location=node.location,
            at=at,
        )
        ops.apply_traits(uow, row, node.traits, f"{at}/traits")
        ops.apply_attributes(row, node.attributes)
        ops.apply_aggregates(uow, row, node.aggregates)
        ops.apply_inventories(uow, row, dict(node.inventories), f"{at}/inventories")
        return "created", row
    if row.kind not in {k.value for k in TREE_KINDS}:
        raise AlreadyExists(f"{node.name!r} names a {row.kind}", [FieldError(f"{at}/name", "taken")])
    changed = False
    if row.name != node.name:
        if uow.providers.get_by_name(node.name) is not None:
            raise AlreadyExists(f"{node.name!r} is taken", [FieldError(f"{at}/name", "taken")])
        row.name, changed = node.name, True
    if row.kind != node.kind.value:
        if uow.providers.has_children(row.id):
            raise ValidationFailed(
                "cannot change the kind of a provider with children",
                [FieldError(f"{at}/kind", f"{row.name} is a {row.kind} with children")],
            )
        row.kind, changed = node.kind.value, True
    parent_id = parent.id if parent else None
    if row.parent_id != parent_id:
        row.parent_id, changed = parent_id, True
    changed = ops.apply_location(row, node.location) or changed
    changed = ops.apply_attributes(row, node.attributes) or changed
    changed = ops.apply_traits(uow, row, node.traits, f"{at}/traits") or changed
    changed = ops.apply_aggregates(uow, row, node.aggregates) or changed
    changed = ops.apply_inventories(uow, row, dict(node.inventories), f"{at}/inventories") or changed
    if changed:
        uow.providers.bump_generation(row, row.generation)
        return "updated", row
    return "unchanged", row


def _prune(uow: UnitOfWork, keep: set[str]) -> int:
    doomed = [r for r in uow.providers.all() if r.name not in keep]
    # Children first: ports and devices, then hosts, links, sites, regions.
    order = {"facility_port": 0, "device": 1, "host": 2, "link": 3, "site": 4, "region": 5}
    for row in sorted(doomed, key=lambda r: order[r.kind]):
        ops.ensure_deletable(uow, row)
        uow.providers.delete(row)
    return len(doomed)


def export_from(uow: UnitOfWork) -> Topology:
    rows = uow.providers.all()
    by_parent: dict[int | None, list[ProviderRow]] = {}
    for row in rows:
        if row.kind in {k.value for k in TREE_KINDS}:
            by_parent.setdefault(row.parent_id, []).append(row)

    def node(row: ProviderRow) -> ProviderNode:
        return ProviderNode.model_validate(
            {
                "name": row.name,
                "kind": row.kind,
                "uuid": UUID(row.uuid),
                "location": Location(lat=row.lat, lon=row.lon)
                if row.lat is not None and row.lon is not None
                else None,
                "traits": [t.trait for t in row.traits],
                "aggregates": [a.aggregate for a in row.aggregates],
                "inventories": {i.resource_class: ops.inventory_of(i) for i in row.inventories},
                "attributes": row.attributes or None,
                "children": [node(c) for c in sorted(by_parent.get(row.id, []), key=lambda r: r.name)],
            }
        )

    links = [presenters.link_view(link) for link in uow.network.links()]
    ports = [presenters.port_view(p) for p in uow.network.ports()]
    return Topology(
        resource_classes=[
            ResourceClassSpec(name=r.name, description=r.description)
            for r in uow.catalog.resource_classes()
            if r.kind == ClassKind.CUSTOM.value
        ],
        traits=sorted(uow.catalog.custom_trait_names()),
        providers=[node(r) for r in sorted(by_parent.get(None, []), key=lambda r: r.name)],
        links=[
            LinkSpec(
                name=v.name, endpoints=v.endpoints, bandwidth_gbps=v.bandwidth_gbps, latency_ms=v.latency_ms
            )
            for v in links
        ],
        facility_ports=[
            FacilityPortSpec(
                name=p.name, site=p.site, device=p.device, vlans=p.vlans, bandwidth_gbps=p.bandwidth_gbps
            )
            for p in ports
        ],
    )
