"""Allocation requests: stored window bodies claimable by id, and the lookups an id claim needs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from slotbroker.store.tables import allocation_requests, consumers, providers

INSERT_BATCH = 500
_INSERT = insert(allocation_requests)


class AllocationRequestRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def commit_without_flush(self) -> None:
        """PostgreSQL: this transaction commits without waiting for its WAL flush (an allocation
        request lost to a crash costs a re-search). Nothing on SQLite."""
        conn = self.session.connection()
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")

    def purge_expired_before(self, before_s: int) -> int:
        """Delete the rows that expired before ``before_s``; how many."""
        done = self.session.execute(
            delete(allocation_requests).where(allocation_requests.c.expires_s < before_s)
        )
        return int(getattr(done, "rowcount", 0) or 0)

    def add(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert rows (id, project, body, expires_s): one cached statement per batch, which SQLAlchemy
        sends as one multi-row INSERT (no per-call compilation of a VALUES list)."""
        conn = self.session.connection()
        for at in range(0, len(rows), INSERT_BATCH):
            conn.execute(_INSERT, list(rows[at : at + INSERT_BATCH]))

    def get(self, ar_id: str) -> Any:
        """(project, body, expires_s) of ``ar_id``, or None."""
        return self.session.execute(
            select(
                allocation_requests.c.project, allocation_requests.c.body, allocation_requests.c.expires_s
            ).where(allocation_requests.c.id == ar_id)
        ).first()

    def consumer_project(self, consumer_uuid: str) -> str | None:
        found = self.session.execute(
            select(consumers.c.project).where(consumers.c.uuid == consumer_uuid)
        ).scalar()
        return None if found is None else str(found)

    def provider_uuids(self) -> dict[int, str]:
        """Every provider's id -> uuid."""
        return {int(i): str(u) for i, u in self.session.execute(select(providers.c.id, providers.c.uuid))}
