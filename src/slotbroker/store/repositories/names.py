"""What a user may type for an object: its full id, a prefix of it, or its name - the query half of the
one resolver (the rule - which match wins, how long a prefix must be - is ``services/names.py``).

Every lookup is scoped to a project (``None``: an admin, every project), so another project's objects
are never matched: their ids and names read exactly like unused ones."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.orm import Session

from slotbroker.domain.claims import ConsumerKind
from slotbroker.store.tables import consumers, jobs, offer_sets, offers


class Kind(StrEnum):
    LEASE = "lease"
    OFFER_SET = "offer set"
    OFFER = "offer"
    JOB = "job"


class NameRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def exact(self, kind: Kind, token: str, project: str | None) -> str | None:
        """The full id ``token`` of a ``kind`` the project can see, or None."""
        stmt, id_col, _ = _base(kind, project)
        found = self.session.scalar(stmt.where(id_col == token))
        return None if found is None else str(found)

    def matches(
        self, kind: Kind, name: str, project: str | None, *, prefix: str, with_prefix: bool, limit: int
    ) -> list[str]:
        """Full ids of the ``kind`` objects named ``name`` or (``with_prefix``) whose id starts with
        ``prefix``, at most ``limit``, in id order."""
        stmt, id_col, name_col = _base(kind, project)
        wanted: list[ColumnElement[bool]] = []
        if name_col is not None:
            wanted.append(name_col == name)
        if with_prefix:
            wanted.append(id_col.startswith(prefix, autoescape=True))
        if not wanted:
            return []
        rows = self.session.scalars(stmt.where(or_(*wanted)).order_by(id_col).limit(limit))
        return [str(r) for r in rows]


def _base(
    kind: Kind, project: str | None
) -> tuple[Select[tuple[str]], ColumnElement[str], ColumnElement[str] | None]:
    """(select of the id column with the project scope, the id column, the name column or None)."""
    if kind is Kind.LEASE:
        stmt = select(consumers.c.uuid).where(consumers.c.kind == ConsumerKind.LEASE.value)
        if project is not None:
            stmt = stmt.where(consumers.c.project == project)
        return stmt, consumers.c.uuid, consumers.c.name
    if kind is Kind.OFFER_SET:
        stmt = select(offer_sets.c.id)
        if project is not None:
            stmt = stmt.where(offer_sets.c.project == project)
        return stmt, offer_sets.c.id, offer_sets.c.name
    if kind is Kind.OFFER:
        stmt = select(offers.c.id).select_from(
            offers.join(offer_sets, offer_sets.c.id == offers.c.offer_set_id)
        )
        if project is not None:
            stmt = stmt.where(offer_sets.c.project == project)
        return stmt, offers.c.id, None
    stmt = select(jobs.c.id)
    if project is not None:
        stmt = stmt.where(jobs.c.project == project)
    return stmt, jobs.c.id, jobs.c.name
