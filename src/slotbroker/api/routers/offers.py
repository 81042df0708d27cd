"""/v1/offer-sets and /v1/offers: offers that hold capacity until they expire; accept one to get a lease."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import Field

from slotbroker.api.auth import Reader
from slotbroker.api.problems import responses
from slotbroker.api.routers.deps import services
from slotbroker.bootstrap import Services
from slotbroker.services.access.tokens import Principal, Role
from slotbroker.wire.offers import AcceptedLease, OfferSetRequest, OfferSetView, OfferView

router = APIRouter(prefix="/v1", tags=["offers"], responses=responses(400, 401, 413, 415, 422, 429, 503))
Svc = Annotated[Services, Depends(services)]
Id = Annotated[str, Field(max_length=36)]


def _project(who: Principal) -> str | None:
    """Whose offers the caller may see: admins all (None), everyone else their project's."""
    return None if who.role == Role.ADMIN else who.project


@router.post(
    "/offer-sets",
    status_code=201,
    response_model=OfferSetView,
    summary="Ask for offers: up to max_offers windows, each holding its capacity until it expires",
)
def create_offer_set(who: Reader, svc: Svc, body: OfferSetRequest, response: Response) -> OfferSetView:
    view = svc.offers.create(body, project=who.project)
    response.headers["Location"] = view.href
    return view


@router.get("/offer-sets/{set_id}", response_model=OfferSetView, responses=responses(404))
def get_offer_set(set_id: Id, who: Reader, svc: Svc) -> OfferSetView:
    return svc.offers.offer_set(set_id, project=_project(who))


@router.get("/offers/{offer_id}", response_model=OfferView, responses=responses(404))
def get_offer(offer_id: Id, who: Reader, svc: Svc) -> OfferView:
    return svc.offers.offer(offer_id, project=_project(who))


@router.post(
    "/offers/{offer_id}/accept",
    response_model=AcceptedLease,
    responses=responses(404, 409),
    summary="Accept an offer: its hold becomes a lease and the other offers of the set are rejected",
)
def accept_offer(offer_id: Id, who: Reader, svc: Svc) -> AcceptedLease:
    return svc.offers.accept(offer_id, project=_project(who))


@router.post(
    "/offers/{offer_id}/reject",
    response_model=OfferView,
    responses=responses(404, 409),
    summary="Reject an offer and free its capacity now (idempotent)",
)
def reject_offer(offer_id: Id, who: Reader, svc: Svc) -> OfferView:
    return svc.offers.reject(offer_id, project=_project(who))
