"""Inventory use cases: providers, inventories, traits, aggregates, resource classes, links, ports.

Each public method is one transaction. Every change to a provider bumps its generation by
compare-and-swap against the generation the caller read, and every capacity change bumps the calendar
generation so cached calendar indexes in every replica notice.
"""

from __future__ import annotations

import re
from uuid import UUID

from pydantic import ValidationError

from slotbroker.domain.errors import (
    AlreadyExists,
    ConcurrentUpdate,
    FieldError,
    NotFound,
    ValidationFailed,
    pointer,
)
from slotbroker.domain.inventory import Inventory, rule_field
from slotbroker.domain.providers import AGGREGATE_PATTERN, TREE_KINDS, ProviderKind, parent_problem
from slotbroker.services.inventory import changes as ops
from slotbroker.services.inventory import presenters
from slotbroker.store.db import Database
from slotbroker.store.models import ProviderRow
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire import providers as cmd
from slotbroker.wire import providers as views

MAX_PAGE = 1000


class InventoryService:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- helpers -------------------------------------------------------------------------------------------
    @staticmethod
    def _provider(uow: UnitOfWork, uuid: UUID | str, *, field: str | None = None) -> ProviderRow:
        row = uow.providers.get(str(uuid))
        if row is None:
            errors = [FieldError(field, f"no provider {uuid}")] if field else []
            if field:
                raise ValidationFailed(f"no provider {uuid}", errors)
            raise NotFound(f"no provider {uuid}")
        return row

    @staticmethod
    def _view(uow: UnitOfWork, row: ProviderRow) -> views.ProviderView:
        parent = uow.providers.by_id([row.parent_id]).get(row.parent_id) if row.parent_id else None
        return presenters.provider_view(row, parent.uuid if parent else None)

    @staticmethod
    def _check_generation(row: ProviderRow, seen: int) -> None:
        if row.generation != seen:
            raise ConcurrentUpdate(
                f"provider {row.name} is at generation {row.generation}, not {seen}; re-read and retry",
                [FieldError("/generation", f"stale generation {seen}; current is {row.generation}")],
            )

    @staticmethod
    def _changed(uow: UnitOfWork, row: ProviderRow, seen: int, *, capacity: bool) -> None:
        uow.providers.bump_generation(row, seen)
        if capacity:
            uow.calendar.bump()

    # -- providers -----------------------------------------------------------------------------------------
    def list_providers(
        self,
        *,
        kinds: list[ProviderKind] | None = None,
        parent_uuid: UUID | None = None,
        traits: list[str] | None = None,
        aggregates: list[str] | None = None,
        name: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> views.ProviderList:
        with UnitOfWork(self.db, readonly=True) as uow:
            parent_id = self._provider(uow, parent_uuid, field="/parent").id if parent_uuid else None
            rows = uow.providers.find(
                kinds=[k.value for k in (kinds or sorted(TREE_KINDS))],
                parent_id=parent_id,
                traits=traits or [],
                aggregates=aggregates or [],
                name=name,
                after_name=cursor,
                limit=min(limit, MAX_PAGE) + 1,
            )
            more = len(rows) > limit
            rows = rows[:limit]
            parents = uow.providers.by_id([r.parent_id for r in rows if r.parent_id])
            items = [
                presenters.provider_view(r, parents[r.parent_id].uuid if r.parent_id else None) for r in rows
            ]
            return views.ProviderList(items=items, next_cursor=rows[-1].name if more and rows else None)

    def get_provider(self, uuid: UUID) -> views.ProviderView:
        with UnitOfWork(self.db, readonly=True) as uow:
            return self._view(uow, self._provider(uow, uuid))

    def create_provider(self, body: cmd.CreateProvider) -> views.ProviderView:
        if body.kind not in TREE_KINDS:
            raise ValidationFailed(
                f"{body.kind.value} providers are created through their own endpoint",
                [FieldError("/kind", "use /v1/links or /v1/facility-ports for links and facility ports")],
            )
        with UnitOfWork(self.db) as uow:
            if uow.providers.get_by_name(body.name) is not None:
                raise AlreadyExists(f"a provider named {body.name!r} exists", [FieldError("/name", "taken")])
            if body.uuid and uow.providers.get(str(body.uuid)) is not None:
                raise AlreadyExists(f"a provider {body.uuid} exists", [FieldError("/uuid", "taken")])
            parent = self._provider(uow, body.parent_uuid, field="/parent_uuid") if body.parent_uuid else None
            row = ops.new_provider(
                uow,
                name=body.name,
                kind=body.kind,
                parent=parent,
                uuid=str(body.uuid) if body.uuid else None,
                location=body.location,
            )
            ops.apply_traits(uow, row, body.traits, "/traits")
            ops.apply_aggregates(uow, row, body.aggregates)
            ops.apply_attributes(row, body.attributes)
            if ops.apply_inventories(uow, row, dict(body.inventories), "/inventories"):
                uow.calendar.bump()
            uow.session.flush()
            view = self._view(uow, row)
            uow.commit()
            return view

    def update_provider(self, uuid: UUID, body: cmd.UpdateProvider) -> views.ProviderView:
        with UnitOfWork(self.db) as uow:
            row = self._provider(uow, uuid)
            self._check_generation(row, body.generation)
            changed = False
            if body.name is not None and body.name != row.name:
                if uow.providers.get_by_name(body.name) is not None:
                    raise AlreadyExists(
                        f"a provider named {body.name!r} exists", [FieldError("/name", "taken")]
                    )
                row.name, changed = body.name, True
            if "parent_uuid" in body.model_fields_set:
                parent = (
                    self._provider(uow, body.parent_uuid, field="/parent_uuid") if body.parent_uuid else None
                )
                why = parent_problem(ProviderKind(row.kind), ProviderKind(parent.kind) if parent else None)
                if why:
                    raise ValidationFailed(why, [FieldError("/parent_uuid", why)])
                new_parent_id = parent.id if parent else None
                if new_parent_id != row.parent_id:
                    row.parent_id, changed = new_parent_id, True
            if "location" in body.model_fields_set:
                changed = ops.apply_location(row, body.location) or changed
            noted = "attributes" in body.model_fields_set and ops.apply_attributes(row, body.attributes)
            if changed or noted:  # attributes alone leave the calendar be: placement does not read them
                self._changed(uow, row, body.generation, capacity=changed)
            view = self._view(uow, row)
            uow.commit()
            return view

    def delete_provider(self, uuid: UUID) -> None:
        with UnitOfWork(self.db) as uow:
            row = self._provider(uow, uuid)
            if row.kind not in TREE_KINDS:
                raise ValidationFailed(f"{row.name} is a {row.kind}; delete it through its own endpoint")
            ops.ensure_deletable(uow, row)
            uow.providers.delete(row)
            uow.calendar.bump()
            uow.commit()

    # -- inventories ---------------------------------------------------------------------------------------
    def get_inventories(self, uuid: UUID) -> views.InventoriesView:
        with UnitOfWork(self.db, readonly=True) as uow:
            row = self._provider(uow, uuid)
            return views.InventoriesView(
                provider_uuid=row.uuid,
                generation=row.generation,
                inventories={i.resource_class: presenters.inventory_view(i) for i in row.inventories},
            )

    def set_inventories(self, uuid: UUID, body: cmd.SetInventories) -> views.InventoriesView:
        with UnitOfWork(self.db) as uow:
            row = self._provider(uow, uuid)
            self._check_generation(row, body.generation)
            if ops.apply_inventories(uow, row, dict(body.inventories), "/inventories"):
                self._changed(uow, row, body.generation, capacity=True)
            result = views.InventoriesView(
                provider_uuid=row.uuid,
                generation=row.generation,
                inventories={i.resource_class: presenters.inventory_view(i) for i in row.inventories},
            )
            uow.commit()
            return result

    def set_inventory(self, uuid: UUID, resource_class: str, body: cmd.SetInventory) -> views.InventoriesView:
        with UnitOfWork(self.db, readonly=True) as uow:
            row = self._provider(uow, uuid)
            desired = {i.resource_class: ops.inventory_of(i) for i in row.inventories}
        try:
            desired[resource_class] = Inventory(**body.model_dump(exclude={"generation"}))
        except ValidationError as exc:  # cross-field rules (reserved > total ...): name the field
            errors = [FieldError(pointer(*e["loc"], *rule_field(e)), e["msg"]) for e in exc.errors()]
            raise ValidationFailed(errors[0].detail, errors) from exc
        return self.set_inventories(uuid, cmd.SetInventories(generation=body.generation, inventories=desired))

    def delete_inventory(self, uuid: UUID, resource_class: str, generation: int) -> views.InventoriesView:
        with UnitOfWork(self.db, readonly=True) as uow:
            row = self._provider(uow, uuid)
            desired = {i.resource_class: ops.inventory_of(i) for i in row.inventories}
        if resource_class not in desired:
            raise NotFound(f"provider {uuid} has no {resource_class} inventory")
        del desired[resource_class]
        return self.set_inventories(uuid, cmd.SetInventories(generation=generation, inventories=desired))

    # -- traits and aggregates of one provider -------------------------------------------------------------
    def set_provider_traits(self, uuid: UUID, body: cmd.SetNames) -> views.NamesView:
        with UnitOfWork(self.db) as uow:
            row = self._provider(uow, uuid)
            self._check_generation(row, body.generation)
            if ops.apply_traits(uow, row, body.names, "/names"):
                self._changed(uow, row, body.generation, capacity=True)
            result = views.NamesView(
                provider_uuid=row.uuid, generation=row.generation, names=[t.trait for t in row.traits]
            )
            uow.commit()
            return result

    def set_provider_aggregates(self, uuid: UUID, body: cmd.SetNames) -> views.NamesView:
        bad = [
            FieldError(f"/names/{i}", f"{n!r} is not an aggregate name")
            for i, n in enumerate(body.names)
            if not re.match(AGGREGATE_PATTERN, n)
        ]
        if bad:
            raise ValidationFailed("invalid aggregate name", bad)
        with UnitOfWork(self.db) as uow:
            row = self._provider(uow, uuid)
            self._check_generation(row, body.generation)
            if ops.apply_aggregates(uow, row, body.names):
                self._changed(uow, row, body.generation, capacity=True)
            result = views.NamesView(
                provider_uuid=row.uuid, generation=row.generation, names=[a.aggregate for a in row.aggregates]
            )
            uow.commit()
            return result

    def provider_traits(self, uuid: UUID) -> views.NamesView:
        with UnitOfWork(self.db, readonly=True) as uow:
            row = self._provider(uow, uuid)
            return views.NamesView(
                provider_uuid=row.uuid, generation=row.generation, names=[t.trait for t in row.traits]
            )

    def provider_aggregates(self, uuid: UUID) -> views.NamesView:
        with UnitOfWork(self.db, readonly=True) as uow:
            row = self._provider(uow, uuid)
            return views.NamesView(
                provider_uuid=row.uuid, generation=row.generation, names=[a.aggregate for a in row.aggregates]
            )
