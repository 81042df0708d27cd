"""Repositories: the only place that knows how rows are queried. Services speak in these verbs.

Generations are bumped with compare-and-swap ``UPDATE ... WHERE generation = :seen``: a writer that read
a stale provider loses cleanly (``ConcurrentUpdate``) instead of overwriting a newer change.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, case, func, select, update
from sqlalchemy.orm import Session, selectinload

from slotbroker.domain.errors import ConcurrentUpdate
from slotbroker.domain.inventory import capacity_of
from slotbroker.store.models import (
    AllocationRow,
    ApiTokenRow,
    CalendarStateRow,
    ConsumerRow,
    FacilityPortRow,
    InventoryRow,
    LinkRow,
    ProviderAggregateRow,
    ProviderRow,
    ProviderTraitRow,
    ResourceClassRow,
    TraitRow,
    calendar_shard,
)


class ProviderRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _query(self) -> Select[ProviderRow]:
        return select(ProviderRow).options(
            selectinload(ProviderRow.inventories),
            selectinload(ProviderRow.traits),
            selectinload(ProviderRow.aggregates),
        )

    def get(self, uuid: str) -> ProviderRow | None:
        return self.session.scalars(self._query().where(ProviderRow.uuid == uuid)).first()

    def get_by_name(self, name: str) -> ProviderRow | None:
        return self.session.scalars(self._query().where(ProviderRow.name == name)).first()

    def by_id(self, ids: Sequence[int]) -> dict[int, ProviderRow]:
        if not ids:
            return {}
        rows = self.session.scalars(select(ProviderRow).where(ProviderRow.id.in_(set(ids))))
        return {r.id: r for r in rows}

    def find(
        self,
        *,
        kinds: Sequence[str] = (),
        parent_id: int | None = None,
        roots_only: bool = False,
        traits: Sequence[str] = (),
        aggregates: Sequence[str] = (),
        name: str | None = None,
        after_name: str | None = None,
        limit: int | None = None,
    ) -> list[ProviderRow]:
        q = self._query().order_by(ProviderRow.name)
        if kinds:
            q = q.where(ProviderRow.kind.in_(kinds))
        if parent_id is not None:
            q = q.where(ProviderRow.parent_id == parent_id)
        if roots_only:
            q = q.where(ProviderRow.parent_id.is_(None))
        for trait in traits:
            q = q.where(
                ProviderRow.id.in_(
                    select(ProviderTraitRow.provider_id).where(ProviderTraitRow.trait == trait)
                )
            )
        if aggregates:  # member of any of them, as Placement's member_of=in:a,b
            q = q.where(
                ProviderRow.id.in_(
                    select(ProviderAggregateRow.provider_id).where(
                        ProviderAggregateRow.aggregate.in_(aggregates)
                    )
                )
            )
        if name is not None:
            q = q.where(ProviderRow.name == name)
        if after_name is not None:
            q = q.where(ProviderRow.name > after_name)
        if limit is not None:
            q = q.limit(limit)
        return list(self.session.scalars(q))

    def all(self) -> list[ProviderRow]:
        return list(self.session.scalars(self._query().order_by(ProviderRow.id)))

    def has_children(self, provider_id: int) -> bool:
        q = select(func.count()).select_from(ProviderRow).where(ProviderRow.parent_id == provider_id)
        return bool(self.session.scalar(q))

    def add(self, row: ProviderRow) -> ProviderRow:
        self.session.add(row)
        self.session.flush()
        return row

    def delete(self, row: ProviderRow) -> None:
        self.session.delete(row)
        self.session.flush()

    def bump_generation(self, row: ProviderRow, seen: int) -> int:
        """Compare-and-swap the provider's generation from ``seen`` to ``seen + 1``."""
        self.session.flush()
        result = self.session.execute(
            update(ProviderRow)
            .where(ProviderRow.id == row.id, ProviderRow.generation == seen)
            .values(generation=seen + 1)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise ConcurrentUpdate(
                f"provider {row.name} changed meanwhile (generation {seen} is stale); re-read and retry"
            )
        self.session.expire(row, ["generation"])
        return seen + 1


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


class NetworkRepository:
    """Link and facility-port attribute rows (their capacity lives in the providers' inventories)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def links(self) -> list[LinkRow]:
        q = select(LinkRow).join(LinkRow.provider).order_by(ProviderRow.name)
        return list(self.session.scalars(q))

    def link(self, provider_id: int) -> LinkRow | None:
        return self.session.get(LinkRow, provider_id)

    def links_touching(self, site_id: int) -> int:
        q = (
            select(func.count())
            .select_from(LinkRow)
            .where((LinkRow.site_a_id == site_id) | (LinkRow.site_b_id == site_id))
        )
        return int(self.session.scalar(q) or 0)

    def ports(self, site_id: int | None = None) -> list[FacilityPortRow]:
        q = select(FacilityPortRow).join(FacilityPortRow.provider).order_by(ProviderRow.name)
        if site_id is not None:
            q = q.where(FacilityPortRow.site_id == site_id)
        return list(self.session.scalars(q))

    def port(self, provider_id: int) -> FacilityPortRow | None:
        return self.session.get(FacilityPortRow, provider_id)

    def add(self, row: LinkRow | FacilityPortRow) -> None:
        self.session.add(row)
        self.session.flush()


class AllocationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def in_use(self, provider_id: int, resource_class: str | None = None) -> bool:
        q = select(func.count()).select_from(AllocationRow).where(AllocationRow.provider_id == provider_id)
        if resource_class is not None:
            q = q.where(AllocationRow.resource_class == resource_class)
        return bool(self.session.scalar(q))

    def peak_usage(self, provider_id: int, resource_class: str, since_s: int) -> int:
        """Peak concurrent usage of one (provider, class) from ``since_s`` on.

        A step function's peak on [since, inf) is reached at ``max(start, since)`` of some allocation, so
        it is enough to sum, at each such point, the amounts of the allocations covering it.
        """
        a = AllocationRow.__table__.alias("a")
        b = AllocationRow.__table__.alias("b")
        point = case((a.c.start_s > since_s, a.c.start_s), else_=since_s)
        covering = (
            (b.c.provider_id == a.c.provider_id)
            & (b.c.resource_class == a.c.resource_class)
            & (b.c.start_s <= point)
            & (b.c.end_s > point)
        )
        per_point = (
            select(func.sum(b.c.amount).label("usage"))
            .select_from(a.join(b, covering))
            .where(a.c.provider_id == provider_id, a.c.resource_class == resource_class, a.c.end_s > since_s)
            .group_by(a.c.id)
            .subquery()
        )
        return int(self.session.scalar(select(func.coalesce(func.max(per_point.c.usage), 0))) or 0)

    def count(self) -> int:
        return int(self.session.scalar(select(func.count()).select_from(AllocationRow)) or 0)

    def overbooked(self) -> list[tuple[int, str, int, int]]:
        """Audit: every (provider, class) whose peak concurrent usage exceeds its capacity, ever.

        Returns (provider_id, class, peak, capacity) rows; an empty list is the invariant. Peaks are
        evaluated at allocation starts, where a step function's maximum is always reached.
        """
        a = AllocationRow.__table__.alias("a")
        b = AllocationRow.__table__.alias("b")
        covering = (
            (b.c.provider_id == a.c.provider_id)
            & (b.c.resource_class == a.c.resource_class)
            & (b.c.start_s <= a.c.start_s)
            & (b.c.end_s > a.c.start_s)
        )
        per_start = (
            select(a.c.provider_id, a.c.resource_class, func.sum(b.c.amount).label("usage"))
            .select_from(a.join(b, covering))
            .group_by(a.c.id, a.c.provider_id, a.c.resource_class)
            .subquery()
        )
        peaks = (
            select(
                per_start.c.provider_id, per_start.c.resource_class, func.max(per_start.c.usage).label("peak")
            )
            .group_by(per_start.c.provider_id, per_start.c.resource_class)
            .subquery()
        )
        inv = InventoryRow.__table__
        rows = self.session.execute(
            select(
                peaks.c.provider_id,
                peaks.c.resource_class,
                peaks.c.peak,
                inv.c.total,
                inv.c.reserved,
                inv.c.allocation_ratio,
            ).select_from(
                peaks.outerjoin(
                    inv,
                    (inv.c.provider_id == peaks.c.provider_id)
                    & (inv.c.resource_class == peaks.c.resource_class),
                )
            )
        )
        out = []
        for provider_id, rc, peak, total, reserved, ratio in rows:
            cap = 0 if total is None else capacity_of(int(total), int(reserved), float(ratio))
            if int(peak) > cap:
                out.append((int(provider_id), str(rc), int(peak), cap))
        return out

    def vlan_clashes(self) -> list[tuple[int, int]]:
        """Audit: (provider_id, tag) pairs where one VLAN tag is held twice at overlapping times."""
        a = AllocationRow.__table__.alias("a")
        b = AllocationRow.__table__.alias("b")
        q = (
            select(a.c.provider_id, a.c.vlan_tag)
            .select_from(
                a.join(
                    b,
                    (a.c.provider_id == b.c.provider_id)
                    & (a.c.vlan_tag == b.c.vlan_tag)
                    & (a.c.id < b.c.id)
                    & (a.c.start_s < b.c.end_s)
                    & (b.c.start_s < a.c.end_s),
                )
            )
            .where(a.c.vlan_tag.is_not(None))
            .distinct()
        )
        return [(int(p), int(t)) for p, t in self.session.execute(q)]

    def lease_count(self) -> int:
        q = select(func.count()).select_from(ConsumerRow).where(ConsumerRow.kind == "lease")
        return int(self.session.scalar(q) or 0)

    def class_in_use(self, resource_class: str) -> bool:
        allocs = (
            select(func.count())
            .select_from(AllocationRow)
            .where(AllocationRow.resource_class == resource_class)
        )
        invs = (
            select(func.count())
            .select_from(InventoryRow)
            .where(InventoryRow.resource_class == resource_class)
        )
        return bool(self.session.scalar(allocs)) or bool(self.session.scalar(invs))


class CalendarRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def generation(self) -> int:
        """The calendar generation: the sum of its shards (see ``CalendarStateRow``)."""
        return int(self.session.scalar(select(func.coalesce(func.sum(CalendarStateRow.generation), 0))) or 0)

    def bump(self, shard_key: int = 0) -> None:
        """Every committed capacity change bumps this, so cached indexes in any replica notice."""
        self.session.execute(
            update(CalendarStateRow)
            .where(CalendarStateRow.id == calendar_shard(shard_key))
            .values(generation=CalendarStateRow.generation + 1)
        )


class TokenRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def by_hash(self, token_hash: str) -> ApiTokenRow | None:
        return self.session.scalars(select(ApiTokenRow).where(ApiTokenRow.token_hash == token_hash)).first()

    def add(self, row: ApiTokenRow) -> ApiTokenRow:
        self.session.add(row)
        self.session.flush()
        return row

    def all(self) -> list[ApiTokenRow]:
        return list(self.session.scalars(select(ApiTokenRow).order_by(ApiTokenRow.id)))
