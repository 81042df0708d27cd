"""The probes' answers (``GET /healthz``, ``GET /readyz``)."""

from __future__ import annotations

from pydantic import BaseModel


class Health(BaseModel):
    """``GET /healthz``: the process is alive."""

    status: str


class Ready(BaseModel):
    """``GET /readyz``: the database is reachable and migrated to head."""

    status: str
    database: str
    migration: str | None
    calendar_generation: int
