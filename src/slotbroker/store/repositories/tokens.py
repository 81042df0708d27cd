"""API tokens by hash."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from slotbroker.store.models import (
    ApiTokenRow,
)


class TokenRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def by_hash(self, token_hash: str) -> ApiTokenRow | None:
        return self.session.scalars(select(ApiTokenRow).where(ApiTokenRow.token_hash == token_hash)).first()

    def add(self, row: ApiTokenRow) -> ApiTokenRow:
        self.session.add(row)
        self.session.flush()
        return row

    def all(self) -> list[ApiTokenRow]:
        return list(self.session.scalars(select(ApiTokenRow).order_by(ApiTokenRow.id)))
