"""The one rule for what a user may type where an id is expected: the full id, a unique prefix of it
(at least ``MIN_PREFIX`` characters), or the object's name. Every router resolves its ``{id}`` path
parameters here before calling its service, so the CLI's ``lease show gpu-run`` and
``/v1/leases/3fa85f`` behave alike everywhere.

* the full id wins outright (a name that happens to equal another object's id cannot shadow it);
* otherwise every object whose name equals the token or whose id starts with it is a candidate: one is
  the answer, none is ``NotFound`` (worded as for an unused id), several are ``Ambiguous`` (409) listing
  the candidates' full ids, so the caller can pick one;
* matching is scoped to the caller's project (admins: every project), so another project's ids and names
  read exactly like unused ones;
* leases, offer sets and offers have UUIDs: a value that is a whole UUID (any case, with or without
  hyphens, as the routes took it before) is that id and costs no query here - the service finds it or
  answers 404 - so names in the form of a UUID are not looked up; id prefixes match case-insensitively.
  Job ids are chosen by clients: they match exactly.
"""

from __future__ import annotations

import uuid

from slotbroker.domain.errors import Ambiguous, NotFound
from slotbroker.store.db import Database
from slotbroker.store.repositories.names import Kind
from slotbroker.store.unit_of_work import UnitOfWork

MIN_PREFIX = 6  # hex digits of a uuid: 16.7 million values, ambiguous only among thousands of objects
MAX_CANDIDATES = 10  # listed in an ambiguity problem (one more is fetched to say "and more")


class NameResolver:
    def __init__(self, db: Database) -> None:
        self.db = db

    def resolve(self, kind: Kind, token: str, *, project: str | None) -> str:
        """The full id ``token`` stands for. Raises ``NotFound`` or ``Ambiguous``."""
        uuids = kind is not Kind.JOB
        if uuids:
            whole = _whole_uuid(token)
            if whole is not None:
                return whole
        with UnitOfWork(self.db, readonly=True) as uow:
            exact = None if uuids else uow.names.exact(kind, token, project)
            if exact is not None:
                return exact
            found = uow.names.matches(
                kind,
                token,
                project,
                prefix=token.lower() if uuids else token,
                with_prefix=len(token) >= MIN_PREFIX,
                limit=MAX_CANDIDATES + 1,
            )
        if not found:
            raise NotFound(f"no {kind.value} {token}")
        if len(found) == 1:
            return found[0]
        more = " (and more)" if len(found) > MAX_CANDIDATES else ""
        shown = found[:MAX_CANDIDATES]
        raise Ambiguous(
            f"{token!r} matches {len(shown)}{more} {kind.value}s: {', '.join(shown)}; give more of the id",
            extensions={"candidates": shown},
        )

    def lease(self, token: str, *, project: str | None) -> str:
        return self.resolve(Kind.LEASE, token, project=project)

    def offer_set(self, token: str, *, project: str | None) -> str:
        return self.resolve(Kind.OFFER_SET, token, project=project)

    def offer(self, token: str, *, project: str | None) -> str:
        return self.resolve(Kind.OFFER, token, project=project)

    def job(self, token: str, *, project: str | None) -> str:
        return self.resolve(Kind.JOB, token, project=project)


def _whole_uuid(token: str) -> str | None:
    """The canonical form of ``token`` when it is a whole UUID, else None."""
    if len(token) < 32:
        return None
    try:
        return str(uuid.UUID(token))
    except ValueError:
        return None


__all__ = ["MIN_PREFIX", "Kind", "NameResolver"]
