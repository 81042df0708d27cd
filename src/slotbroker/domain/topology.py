"""The topology document: a whole inventory in one YAML or JSON file (docs/topology-format.md).

Structure is validated here (shapes, names unique, the tree's kinds, link and port sites exist). What
needs the database (registered custom classes and traits) is checked by the import service, which
reports problems with JSON pointers into this same document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from slotbroker.domain.errors import FieldError, ValidationFailed, pointer, problems_detail
from slotbroker.domain.inventory import Inventory, InventoryField
from slotbroker.domain.network import FacilityPortSpec, LinkSpec
from slotbroker.domain.providers import (
    MAX_ATTRIBUTES,
    TREE_KINDS,
    AggregateName,
    Attributes,
    Location,
    ProviderKind,
    ProviderName,
    TraitName,
    parent_problem,
)
from slotbroker.domain.resource_classes import CUSTOM_RE, naming_problem
from slotbroker.domain.traits import CUSTOM_TRAIT_RE, trait_problem


class ProviderNode(BaseModel):
    """A provider and, nested, its children."""

    model_config = ConfigDict(extra="forbid")

    name: ProviderName
    kind: ProviderKind
    uuid: UUID | None = Field(None, description="Kept on export so re-imports match by identity.")
    location: Location | None = None
    traits: list[TraitName] = Field(default_factory=list)
    aggregates: list[AggregateName] = Field(default_factory=list)
    inventories: dict[str, InventoryField] = Field(default_factory=dict)
    attributes: Attributes | None = Field(
        None,
        max_length=MAX_ATTRIBUTES,
        description="Operator facts a provisioner reads (e.g. ssh_host, ssh_port, ssh_user); strings.",
    )
    children: list[ProviderNode] = Field(default_factory=list)

    @field_serializer("inventories")
    def _compact(self, inventories: dict[str, Inventory]) -> dict[str, Inventory | int]:
        """Write ``VCPU: 128`` when only the total differs from the defaults: exports stay readable."""
        return {
            rc: inv.total if inv == Inventory(total=inv.total) else inv for rc, inv in inventories.items()
        }


class ResourceClassSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^CUSTOM_[A-Z0-9][A-Z0-9_]{0,247}$")
    description: str = Field("", max_length=1000)


class Topology(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    resource_classes: list[ResourceClassSpec] = Field(
        default_factory=list, description="Custom resource classes to register."
    )
    traits: list[TraitName] = Field(default_factory=list, description="Custom traits to register.")
    providers: list[ProviderNode] = Field(default_factory=list)
    links: list[LinkSpec] = Field(default_factory=list)
    facility_ports: list[FacilityPortSpec] = Field(default_factory=list)

    def walk(self) -> list[tuple[ProviderNode, ProviderNode | None, str]]:
        """Every provider node with its parent and its JSON pointer, parents before children."""
        out: list[tuple[ProviderNode, ProviderNode | None, str]] = []

        def visit(node: ProviderNode, parent: ProviderNode | None, at: str) -> None:
            out.append((node, parent, at))
            for i, child in enumerate(node.children):
                visit(child, node, f"{at}/children/{i}")

        for i, root in enumerate(self.providers):
            visit(root, None, pointer("providers", i))
        return out


@dataclass(frozen=True)
class Registry:
    """Custom resource classes and traits already registered in the store."""

    custom_classes: frozenset[str] = frozenset()
    custom_traits: frozenset[str] = frozenset()


def validate_topology(doc: Topology, registry: Registry) -> None:
    """Raise ``ValidationFailed`` listing every problem of the document, each with its pointer."""
    problems = topology_problems(doc, registry)
    if problems:
        raise ValidationFailed(problems_detail("the topology document", problems), problems)


def topology_problems(doc: Topology, registry: Registry) -> list[FieldError]:
    """Everything wrong with the document: its tree, names, classes, traits, link and port sites.

    Custom classes and traits must be declared in the document itself or already registered.
    """
    problems: list[FieldError] = []
    declared_classes = {rc.name for rc in doc.resource_classes} | registry.custom_classes
    declared_traits = set(doc.traits) | registry.custom_traits

    for i, trait in enumerate(doc.traits):
        if not CUSTOM_TRAIT_RE.match(trait):
            problems.append(FieldError(pointer("traits", i), f"only CUSTOM_* traits are registered: {trait}"))

    names: dict[str, str] = {}
    kinds: dict[str, ProviderKind] = {}
    for node, parent, at in doc.walk():
        if node.kind not in TREE_KINDS:
            problems.append(
                FieldError(
                    at + "/kind",
                    f"{node.kind.value} providers are declared under "
                    "'links' or 'facility_ports', not in the tree",
                )
            )
        why = parent_problem(node.kind, parent.kind if parent else None)
        if why:
            problems.append(FieldError(at + "/kind", why))
        if node.name in names:
            problems.append(
                FieldError(
                    at + "/name", f"duplicate provider name {node.name!r} (also at {names[node.name]})"
                )
            )
        names[node.name] = at
        kinds[node.name] = node.kind
        for rc in node.inventories:
            why = naming_problem(rc)
            if why is None and CUSTOM_RE.match(rc) and rc not in declared_classes:
                why = f"custom resource class {rc!r} is neither declared in resource_classes nor registered"
            if why:
                problems.append(FieldError(f"{at}/inventories/{pointer(rc)[1:]}", why))
        for j, trait in enumerate(node.traits):
            why = trait_problem(trait, declared_traits)
            if why:
                problems.append(FieldError(f"{at}/traits/{j}", why))

    link_names: set[str] = set()
    for i, link in enumerate(doc.links):
        at = pointer("links", i)
        if link.name in names or link.name in link_names:
            problems.append(FieldError(at + "/name", f"duplicate name {link.name!r}"))
        link_names.add(link.name)
        for j, end in enumerate(link.endpoints):
            if kinds.get(end) != ProviderKind.SITE:
                problems.append(FieldError(f"{at}/endpoints/{j}", f"{end!r} is not a site in this document"))
    port_names: set[tuple[str, str]] = set()
    for i, port in enumerate(doc.facility_ports):
        at = pointer("facility_ports", i)
        if kinds.get(port.site) != ProviderKind.SITE:
            problems.append(FieldError(at + "/site", f"{port.site!r} is not a site in this document"))
        if (port.site, port.name) in port_names:
            problems.append(FieldError(at + "/name", f"duplicate facility port {port.name!r} at {port.site}"))
        port_names.add((port.site, port.name))
    return problems
