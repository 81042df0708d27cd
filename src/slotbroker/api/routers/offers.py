"""/v1/offer-sets and /v1/offers: offers that hold capacity until they expire; accept one to get a lease.

Also the offers sweeper: ``lifespan`` registers ``OfferService.expire_due`` with the lease event loop's
periodic jobs (or, without that loop, runs it in a small thread of its own) every
``Settings.event_loop_interval_s`` seconds. Reads expire what is due on their own, so the sweeper only
makes capacity free sooner for everyone else.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Response
from pydantic import Field

from slotbroker.api.auth import Reader
from slotbroker.api.problems import responses
from slotbroker.api.routers.deps import Services, services
from slotbroker.services.offers import OfferService
from slotbroker.services.tokens import Principal, Role
from slotbroker.wire.offers import AcceptedLease, OfferSetRequest, OfferSetView, OfferView

router = APIRouter(prefix="/v1", tags=["offers"], responses=responses(400, 401, 413, 415, 422, 429, 503))
Svc = Annotated[Services, Depends(services)]
Id = Annotated[str, Field(max_length=36)]
log = logging.getLogger("slotbroker.offers")


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


# -- the sweeper ---------------------------------------------------------------------------------------------


def sweep_forever(offers: OfferService, interval_s: float, stop: threading.Event) -> None:
    while not stop.wait(interval_s):
        try:
            n = offers.expire_due()
            if n:
                log.info("expired %d offers", n)
        except Exception:  # a failed sweep is retried next interval; reads expire on their own
            log.exception("offer sweep failed")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Sweep expired offers while the app is up.

    When the lease event loop is installed (``app.state.periodic``, see ``leases.install_event_loop``)
    the sweep joins its periodic jobs and runs on every tick, in its thread; otherwise a small thread of
    its own calls ``expire_due`` every ``Settings.event_loop_interval_s`` seconds (0 disables both).
    """
    svc: Services = app.state.services
    periodic: list[Callable[[int], object]] | None = getattr(app.state, "periodic", None)
    stop = threading.Event()
    thread: threading.Thread | None = None
    if periodic is not None:
        if svc.offers.expire_due not in periodic:
            periodic.append(svc.offers.expire_due)
    else:
        interval = float(getattr(app.state.settings, "event_loop_interval_s", 0.0))
        if interval > 0:
            thread = threading.Thread(
                target=sweep_forever, args=(svc.offers, interval, stop), name="offer-sweeper", daemon=True
            )
            thread.start()
    try:
        yield
    finally:
        stop.set()
        if thread is not None:
            thread.join(timeout=10)
