"""The catalogue: resource classes, traits and aggregate names."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from slotbroker.store.models import (
    ProviderAggregateRow,
    ProviderTraitRow,
    ResourceClassRow,
    TraitRow,
)


class CatalogRepository:
    """Resource classes and traits."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def resource_classes(self) -> list[ResourceClassRow]:
        return list(self.session.scalars(select(ResourceClassRow).order_by(ResourceClassRow.name)))

    def resource_class(self, name: str) -> ResourceClassRow | None:
        return self.session.get(ResourceClassRow, name)

    def custom_class_names(self) -> frozenset[str]:
        q = select(ResourceClassRow.name).where(ResourceClassRow.kind == "custom")
        return frozenset(self.session.scalars(q))

    def add_resource_class(self, name: str, kind: str, description: str) -> ResourceClassRow:
        row = ResourceClassRow(name=name, kind=kind, description=description)
        self.session.add(row)
        self.session.flush()
        return row

    def delete_resource_class(self, row: ResourceClassRow) -> None:
        self.session.delete(row)
        self.session.flush()

    def traits(self) -> list[TraitRow]:
        return list(self.session.scalars(select(TraitRow).order_by(TraitRow.name)))

    def trait(self, name: str) -> TraitRow | None:
        return self.session.get(TraitRow, name)

    def custom_trait_names(self) -> frozenset[str]:
        return frozenset(self.session.scalars(select(TraitRow.name).where(TraitRow.custom.is_(True))))

    def add_trait(self, name: str) -> TraitRow:
        row = TraitRow(name=name, custom=True)
        self.session.add(row)
        self.session.flush()
        return row

    def delete_trait(self, row: TraitRow) -> None:
        self.session.delete(row)
        self.session.flush()

    def trait_in_use(self, name: str) -> bool:
        q = select(func.count()).select_from(ProviderTraitRow).where(ProviderTraitRow.trait == name)
        return bool(self.session.scalar(q))

    def aggregates(self) -> list[tuple[str, int]]:
        q = (
            select(ProviderAggregateRow.aggregate, func.count())
            .group_by(ProviderAggregateRow.aggregate)
            .order_by(ProviderAggregateRow.aggregate)
        )
        return [(a, int(n)) for a, n in self.session.execute(q)]
