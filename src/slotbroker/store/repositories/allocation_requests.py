"""The lookups a claim by allocation request id needs (the ids carry their own content: nothing is
stored per id)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from slotbroker.store.tables import consumers, providers


class AllocationRequestRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def consumer_project(self, consumer_uuid: str) -> str | None:
        found = self.session.execute(
            select(consumers.c.project).where(consumers.c.uuid == consumer_uuid)
        ).scalar()
        return None if found is None else str(found)

    def provider_uuids(self) -> dict[int, str]:
        """Every provider's id -> uuid."""
        return {int(i): str(u) for i, u in self.session.execute(select(providers.c.id, providers.c.uuid))}
