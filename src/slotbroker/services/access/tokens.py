"""API tokens: random bearer secrets, stored only as SHA-256 hashes, bound to a project and a role.

SHA-256 (not a slow password hash) is right here because the secret is 256 random bits, not a
human-chosen password: there is nothing to brute-force, and every request must verify it quickly.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from slotbroker.domain.errors import Unauthorized, ValidationFailed
from slotbroker.store.db import Database
from slotbroker.store.models import ApiTokenRow
from slotbroker.store.unit_of_work import UnitOfWork

PREFIX = "sb_"


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    USER = "user"


@dataclass(frozen=True)
class Principal:
    token_id: int
    project: str
    role: Role

    @property
    def manages_inventory(self) -> bool:
        return self.role in (Role.ADMIN, Role.OPERATOR)


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenService:
    """Tokens; verified principals are remembered for ``cache_s`` seconds, so a busy client costs one
    lookup per interval instead of one per request (revocation takes effect within that interval)."""

    def __init__(self, db: Database, *, cache_s: float = 10.0) -> None:
        self.db = db
        self.cache_s = cache_s
        self._seen: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def create(self, *, project: str, role: Role, name: str = "") -> str:
        """Create a token and return its secret — the only time it is ever visible."""
        if not project or len(project) > 200:
            raise ValidationFailed("project must be 1-200 characters")
        secret = PREFIX + secrets.token_urlsafe(32)
        with UnitOfWork(self.db) as uow:
            uow.tokens.add(
                ApiTokenRow(
                    name=name,
                    token_hash=hash_token(secret),
                    prefix=secret[:10],
                    project=project,
                    role=role.value,
                )
            )
            uow.commit()
        return secret

    def cached(self, secret: str) -> Principal | None:
        """The principal of ``secret`` if it was verified less than ``cache_s`` ago; no I/O, so an
        async caller can try it on the event loop and go to a thread only on a miss."""
        hit = self._seen.get(hash_token(secret))
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def authenticate(self, secret: str) -> Principal:
        digest = hash_token(secret)
        now = time.monotonic()
        hit = self._seen.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        principal = self._lookup(digest)
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen = {k: v for k, v in self._seen.items() if v[0] > now}
            self._seen[digest] = (now + self.cache_s, principal)
        return principal

    def _lookup(self, digest: str) -> Principal:
        with UnitOfWork(self.db, readonly=True) as uow:
            row = uow.tokens.by_hash(digest)
            if row is None or row.revoked_at is not None:
                raise Unauthorized("unknown or revoked token")
            if row.expires_at is not None and row.expires_at.replace(tzinfo=UTC) <= datetime.now(UTC):
                raise Unauthorized("token expired")
            return Principal(token_id=row.id, project=row.project, role=Role(row.role))
