"""/v1/calendar-feeds (create, list, revoke) and /v1/ical/{secret}.ics, the URL calendar apps poll.

The feed URL needs no Authorization header (calendar apps cannot send one): its secret is the
credential, and it reads that project's lease calendar only (``services/calendar_feeds.py``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from slotbroker.api.auth import Reader
from slotbroker.api.problems import responses
from slotbroker.api.routers.deps import services
from slotbroker.bootstrap import Services
from slotbroker.services.tokens import Role
from slotbroker.wire.calendar_feeds import CreatedFeed, CreateFeed, FeedView

router = APIRouter(prefix="/v1", tags=["leases"], responses=responses(400, 401, 413, 415, 422, 429, 503))
Svc = Annotated[Services, Depends(services)]
ICAL_TYPE = "text/calendar; charset=utf-8"
FeedId = Annotated[int, Path(ge=1, le=2**31 - 1, description="A feed's id (an INTEGER column).")]


@router.post(
    "/calendar-feeds",
    status_code=201,
    response_model=CreatedFeed,
    summary="Create a read-only calendar feed URL of your project's leases (its secret is shown once)",
)
def create_feed(body: CreateFeed, who: Reader, svc: Svc) -> CreatedFeed:
    return svc.feeds.create(project=who.project, name=body.name)


@router.get("/calendar-feeds", response_model=list[FeedView], summary="Your project's calendar feeds")
def list_feeds(who: Reader, svc: Svc) -> list[FeedView]:
    return svc.feeds.list(project=None if who.role == Role.ADMIN else who.project)


@router.delete(
    "/calendar-feeds/{feed_id}",
    response_model=FeedView,
    responses=responses(404),
    summary="Revoke a calendar feed: its URL stops working at once (idempotent)",
)
def revoke_feed(feed_id: FeedId, who: Reader, svc: Svc) -> FeedView:
    return svc.feeds.revoke(feed_id, project=None if who.role == Role.ADMIN else who.project)


@router.get(
    "/ical/{secret}.ics",
    response_class=Response,
    responses={**responses(404), 200: {"content": {"text/calendar": {"schema": {"type": "string"}}}}},
    summary="A calendar feed (no Authorization header: the secret in the URL is the credential)",
)
def feed(secret: Annotated[str, Path(min_length=1, max_length=100)], svc: Svc) -> Response:
    body = svc.feeds.render(secret)
    return Response(body.encode(), media_type=ICAL_TYPE, headers={"Cache-Control": "private, max-age=60"})
