"""/v1/offer-sets and /v1/offers: offers that hold capacity until they expire; accept one to get a lease.

Every ``{id}`` takes the full id, a unique prefix of it or (offer sets) the set's name: the routes
resolve it with ``svc.names`` (``services/names.py``) before calling the service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from slotbroker.api.auth import Reader
from slotbroker.api.problems import responses
from slotbroker.api.routers.deps import services
from slotbroker.bootstrap import Services
from slotbroker.services.tokens import Principal, Role
from slotbroker.wire.offers import AcceptedLease, OfferSetPatch, OfferSetRequest, OfferSetView, OfferView

router = APIRouter(prefix="/v1", tags=["offers"], responses=responses(400, 401, 413, 415, 422, 429, 503))
Svc = Annotated[Services, Depends(services)]
SetRef = Annotated[
    str,
    Path(
        min_length=1,
        max_length=200,
        description="The offer set's id, a unique prefix of it (6 characters or more) or its name.",
    ),
]
OfferRef = Annotated[
    str, Path(min_length=1, max_length=36, description="The offer's id or a unique prefix (6 or more).")
]


def _project(who: Principal) -> str | None:
    """Whose offers the caller may see: admins all (None), everyone else their project's."""
    return None if who.role == Role.ADMIN else who.project


def _set(svc: Services, ref: str, who: Principal) -> str:
    return svc.names.offer_set(ref, project=_project(who))


def _offer(svc: Services, ref: str, who: Principal) -> str:
    return svc.names.offer(ref, project=_project(who))


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


@router.get("/offer-sets/{set_id}", response_model=OfferSetView, responses=responses(404, 409))
def get_offer_set(set_id: SetRef, who: Reader, svc: Svc) -> OfferSetView:
    return svc.offers.offer_set(_set(svc, set_id, who), project=_project(who))


@router.patch(
    "/offer-sets/{set_id}",
    response_model=OfferSetView,
    responses=responses(404, 409),
    summary="Rename an offer set",
)
def patch_offer_set(set_id: SetRef, body: OfferSetPatch, who: Reader, svc: Svc) -> OfferSetView:
    return svc.offer_sets.rename(_set(svc, set_id, who), body.name, project=_project(who))


@router.post(
    "/offer-sets/{set_id}/renew",
    response_model=OfferSetView,
    responses=responses(404, 409),
    summary="Keep the set's open offers (and the capacity they hold) for another offer TTL from now",
)
def renew_offer_set(set_id: SetRef, who: Reader, svc: Svc) -> OfferSetView:
    return svc.offer_sets.renew(_set(svc, set_id, who), project=_project(who))


@router.get("/offers/{offer_id}", response_model=OfferView, responses=responses(404, 409))
def get_offer(offer_id: OfferRef, who: Reader, svc: Svc) -> OfferView:
    return svc.offers.offer(_offer(svc, offer_id, who), project=_project(who))


@router.post(
    "/offers/{offer_id}/accept",
    response_model=AcceptedLease,
    responses=responses(404, 409),
    summary="Accept an offer: its hold becomes a lease and the other offers of the set are rejected",
)
def accept_offer(offer_id: OfferRef, who: Reader, svc: Svc) -> AcceptedLease:
    return svc.offers.accept(_offer(svc, offer_id, who), project=_project(who))


@router.post(
    "/offers/{offer_id}/reject",
    response_model=OfferView,
    responses=responses(404, 409),
    summary="Reject an offer and free its capacity now (idempotent)",
)
def reject_offer(offer_id: OfferRef, who: Reader, svc: Svc) -> OfferView:
    return svc.offers.reject(_offer(svc, offer_id, who), project=_project(who))
