"""Resource classes, traits and aggregates: the vocabulary providers are described with."""

from __future__ import annotations

from slotbroker.domain.errors import AlreadyExists, FieldError, InUse, NotFound, ValidationFailed
from slotbroker.domain.resource_classes import ClassKind, device_description, kind_of, naming_problem
from slotbroker.domain.traits import CUSTOM_TRAIT_RE
from slotbroker.store.db import Database
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire import providers as views


class CatalogService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def resource_classes(self) -> list[views.ResourceClassView]:
        with UnitOfWork(self.db, readonly=True) as uow:
            return [
                views.ResourceClassView(name=r.name, kind=r.kind, description=r.description)
                for r in uow.catalog.resource_classes()
            ]

    def resource_class(self, name: str) -> views.ResourceClassView:
        with UnitOfWork(self.db, readonly=True) as uow:
            row = uow.catalog.resource_class(name)
            if row is not None:
                return views.ResourceClassView(name=row.name, kind=row.kind, description=row.description)
        if kind_of(name) == ClassKind.DEVICE:  # valid by the naming rule even before first use
            return views.ResourceClassView(name=name, kind="device", description=device_description(name))
        raise NotFound(naming_problem(name) or f"resource class {name} is not registered")

    def create_resource_class(self, name: str, description: str) -> views.ResourceClassView:
        with UnitOfWork(self.db) as uow:
            if uow.catalog.resource_class(name) is not None:
                raise AlreadyExists(f"resource class {name} exists", [FieldError("/name", "taken")])
            row = uow.catalog.add_resource_class(name, ClassKind.CUSTOM.value, description)
            view = views.ResourceClassView(name=row.name, kind=row.kind, description=row.description)
            uow.calendar.bump()  # find-slot validates names against the cached calendar
            uow.commit()
            return view

    def delete_resource_class(self, name: str) -> None:
        with UnitOfWork(self.db) as uow:
            row = uow.catalog.resource_class(name)
            if row is None:
                raise NotFound(f"resource class {name} is not registered")
            if row.kind != ClassKind.CUSTOM.value:
                raise ValidationFailed(f"{name} is a {row.kind} class; only custom classes can be deleted")
            if uow.allocations.class_in_use(name):
                raise InUse(f"{name} is used by inventories or allocations")
            uow.catalog.delete_resource_class(row)
            uow.calendar.bump()  # find-slot validates names against the cached calendar
            uow.commit()

    def traits(self, *, custom_only: bool = False) -> list[views.TraitView]:
        with UnitOfWork(self.db, readonly=True) as uow:
            return [
                views.TraitView(name=t.name, custom=t.custom)
                for t in uow.catalog.traits()
                if t.custom or not custom_only
            ]

    def trait(self, name: str) -> views.TraitView:
        with UnitOfWork(self.db, readonly=True) as uow:
            row = uow.catalog.trait(name)
            if row is None:
                raise NotFound(f"trait {name} is not registered")
            return views.TraitView(name=row.name, custom=row.custom)

    def create_trait(self, name: str) -> tuple[views.TraitView, bool]:
        """Register a custom trait (idempotent, as Placement's PUT); returns (view, created)."""
        if not CUSTOM_TRAIT_RE.match(name):
            raise ValidationFailed(
                f"only CUSTOM_* traits can be registered, not {name!r}",
                [FieldError("/name", "must match CUSTOM_[A-Z0-9_]+")],
            )
        with UnitOfWork(self.db) as uow:
            if uow.catalog.trait(name) is not None:
                return views.TraitView(name=name, custom=True), False
            uow.catalog.add_trait(name)
            uow.calendar.bump()  # find-slot validates names against the cached calendar
            uow.commit()
            return views.TraitView(name=name, custom=True), True

    def delete_trait(self, name: str) -> None:
        with UnitOfWork(self.db) as uow:
            row = uow.catalog.trait(name)
            if row is None:
                raise NotFound(f"trait {name} is not registered")
            if not row.custom:
                raise ValidationFailed(f"{name} is a standard trait and cannot be deleted")
            if uow.catalog.trait_in_use(name):
                raise InUse(f"trait {name} is set on providers")
            uow.catalog.delete_trait(row)
            uow.calendar.bump()  # find-slot validates names against the cached calendar
            uow.commit()

    def aggregates(self) -> list[views.AggregateView]:
        with UnitOfWork(self.db, readonly=True) as uow:
            return [views.AggregateView(name=n, members=m) for n, m in uow.catalog.aggregates()]
