"""What a user may type for an object: its full id, a prefix of it, or its name - the query half of the
one resolver (the rule - which match wins, how long a prefix must be - is ``services/names.py``).

Every lookup is scoped to a project (``None``: an admin, every project), so another project's objects
are never matched: their ids and names read exactly like unused ones."""

from __future__ import annotations

from enum import StrEnum
from itertools import pairwise

from sqlalchemy import ColumnElement, Select, func, select
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
        ``prefix``, at most ``limit``, in id order.

        The prefix is a range on the id (``prefix_bounds``), which a plain B-tree index serves on SQLite
        and PostgreSQL alike (a ``LIKE 'abc%'`` needs ``text_pattern_ops`` on PostgreSQL and a NOCASE
        column on SQLite), narrowed to the exact prefix: no character of it is a wildcard. Names are a
        query of their own, so an OR over an unindexed name column cannot turn the range into a scan."""
        stmt, id_col, name_col = _base(kind, project)
        found: set[str] = set()
        if name_col is not None:
            found.update(str(r) for r in self.session.scalars(stmt.where(name_col == name).limit(limit)))
        if with_prefix and prefix:
            low, high = prefix_bounds(prefix)
            wanted = [id_col >= low, func.substr(id_col, 1, len(prefix)) == prefix]
            if high is not None:
                wanted.append(id_col < high)
            rows = self.session.scalars(stmt.where(*wanted).order_by(id_col).limit(limit))
            found.update(str(r) for r in rows)
        return sorted(found)[:limit]


# The next character up, for an upper bound that holds in code-point order and in the usual linguistic
# collations alike (where punctuation is ignored at first and no letter follows 'z').
_LOWER, _UPPER = "0123456789abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_NEXT = dict(pairwise(_LOWER)) | dict(pairwise(_UPPER))


def prefix_bounds(prefix: str) -> tuple[str, str | None]:
    """[low, high) around every string that starts with ``prefix`` (high None: no upper bound). The
    bound comes from the prefix's last ASCII letter or digit, raised by one (a trailing 'z' or 'Z', and
    anything else, is dropped first: '3fa85f64-' is bounded by '3fa85f65'). The range may hold strings
    that do not start with ``prefix`` (the caller narrows it), never misses one that does."""
    stem = prefix
    while stem:
        up = _NEXT.get(stem[-1])
        if up is not None:
            return prefix, stem[:-1] + up
        stem = stem[:-1]
    return prefix, None


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
