"""Secrets the replicas on one database share (``broker_secrets``): made once, then only read."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from slotbroker.store.tables import broker_secrets


class SecretRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get_or_add(self, name: str, value: str) -> str:
        """The secret ``name``; when there is none yet, ``value`` becomes it. Two replicas racing to make
        it both end with the one that committed first (the insert does nothing on a taken name)."""
        dialect = self.session.connection().dialect.name
        build = postgresql.insert if dialect == "postgresql" else sqlite.insert
        self.session.execute(build(broker_secrets).values(name=name, value=value).on_conflict_do_nothing())
        return str(
            self.session.execute(
                select(broker_secrets.c.value).where(broker_secrets.c.name == name)
            ).scalar_one()
        )
