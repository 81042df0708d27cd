"""Links and facility ports."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from slotbroker.store.models import (
    FacilityPortRow,
    LinkRow,
    ProviderRow,
)


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
