"""Providers: the tree, their generations (compare-and-swap), traits and aggregates.

Generations are bumped with ``UPDATE ... WHERE generation = :seen``: a writer that read a stale provider
loses cleanly (``ConcurrentUpdate``) instead of overwriting a newer change.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session, selectinload

from slotbroker.domain.errors import ConcurrentUpdate
from slotbroker.store.models import (
    ProviderAggregateRow,
    ProviderRow,
    ProviderTraitRow,
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
