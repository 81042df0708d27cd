"""Calendar feeds: calendar apps subscribe to a URL and cannot send an Authorization header, so the
secret travels in the URL. It is therefore a token of its own kind (``sbcal_``, table
``calendar_feeds``): it reads its project's lease calendar and nothing else, it can be listed and
revoked without touching the project's API tokens, and an API token never appears in a URL.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from slotbroker.domain.errors import NotFound
from slotbroker.services.leases import LeaseService
from slotbroker.services.tokens import hash_token
from slotbroker.store.db import Database
from slotbroker.store.models import CalendarFeedRow
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire.calendar_feeds import CreatedFeed, FeedView

FEED_PREFIX = "sbcal_"
FEED_PATH = "/v1/ical/{secret}.ics"


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _view(row: CalendarFeedRow) -> FeedView:
    return FeedView(
        id=row.id,
        name=row.name,
        project=row.project,
        prefix=row.prefix,
        created_at=_utc(row.created_at) or row.created_at,
        revoked_at=_utc(row.revoked_at),
    )


class CalendarFeeds:
    def __init__(self, db: Database, leases: LeaseService) -> None:
        self.db = db
        self.leases = leases

    def create(self, *, project: str, name: str = "") -> CreatedFeed:
        """A new feed of ``project``'s leases; its URL (with the secret) is returned only here."""
        secret = FEED_PREFIX + secrets.token_urlsafe(32)
        with UnitOfWork(self.db) as uow:
            row = uow.feeds.add(
                CalendarFeedRow(name=name, token_hash=hash_token(secret), prefix=secret[:12], project=project)
            )
            view = _view(row)
            uow.commit()
        return CreatedFeed(**view.model_dump(), url=FEED_PATH.format(secret=secret))

    def list(self, *, project: str | None) -> list[FeedView]:
        with UnitOfWork(self.db, readonly=True) as uow:
            return [_view(r) for r in uow.feeds.listed(project)]

    def revoke(self, feed_id: int, *, project: str | None) -> FeedView:
        """Revoke (idempotent): the feed's URL answers 404 from now on."""
        with UnitOfWork(self.db) as uow:
            row = uow.feeds.get(feed_id)
            if row is None or (project is not None and row.project != project):
                raise NotFound(f"no calendar feed {feed_id}")
            uow.feeds.revoke(feed_id, datetime.now(UTC))
            uow.commit()
        with UnitOfWork(self.db, readonly=True) as uow:
            found = uow.feeds.get(feed_id)
            assert found is not None
            return _view(found)

    def render(self, secret: str) -> str:
        """The feed's iCalendar document. An unknown or revoked secret is ``NotFound`` (one answer for
        both: a URL that stopped working says nothing about whether it ever did)."""
        with UnitOfWork(self.db, readonly=True) as uow:
            row = uow.feeds.by_hash(hash_token(secret)) if secret.startswith(FEED_PREFIX) else None
            project = None if row is None or row.revoked_at is not None else str(row.project)
        if project is None:
            raise NotFound("no such calendar feed (unknown or revoked)")
        return self.leases.ical(project=project)


__all__ = ["FEED_PATH", "FEED_PREFIX", "CalendarFeeds"]
