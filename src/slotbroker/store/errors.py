"""What a database error means to the layers above, asked here so that they need not know SQLAlchemy's
exception classes or the drivers' SQLSTATEs."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, IntegrityError

# SQLSTATEs worth retrying: serialization_failure, deadlock_detected, lock_not_available.
RETRY_SQLSTATES = frozenset({"40001", "40P01", "55P03"})


def is_retryable(exc: BaseException) -> bool:
    """A transient concurrency failure: retrying the whole transaction may succeed."""
    if not isinstance(exc, DBAPIError) or isinstance(exc, IntegrityError):
        return False
    orig = exc.orig
    if getattr(orig, "sqlstate", None) in RETRY_SQLSTATES:
        return True
    # SQLite: busy_timeout (30 s) expired or a lock upgrade was refused.
    text = str(orig).lower()
    return "database is locked" in text or "database table is locked" in text


def is_uuid_taken(exc: BaseException) -> bool:
    """A unique violation on a ``uuid`` column: the caller chose an id that exists."""
    return isinstance(exc, IntegrityError) and "uuid" in str(exc.orig).lower()
