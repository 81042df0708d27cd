"""What offers and offer sets look like from outside: the set's status from its offers' states, an offer
row as its view, and the conflicts accepting or rejecting one answers (stable codes, HTTP 409). Shared by
the offer service, renewal and the IVOA translation."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from slotbroker.domain.claims import ConsumerKind
from slotbroker.domain.errors import SlotbrokerError
from slotbroker.domain.time import to_datetime
from slotbroker.wire.find_slot import PortView, RouteView
from slotbroker.wire.offers import OfferSetStatus, OfferState, OfferView, Strategy

OFFER_EXPIRED = "offer_expired"
OFFER_NOT_OPEN = "offer_not_open"


@dataclass
class OfferConflict(SlotbrokerError):
    """The offer cannot be accepted (or rejected): ``offer_expired`` or ``offer_not_open`` (HTTP 409)."""

    code: str = OFFER_NOT_OPEN


def set_status(states: Sequence[str]) -> OfferSetStatus:
    if not states:
        return OfferSetStatus.EMPTY
    if OfferState.ACCEPTED in states:
        return OfferSetStatus.ACCEPTED
    if OfferState.OFFERED in states:
        return OfferSetStatus.OPEN
    if all(s == OfferState.EXPIRED for s in states):
        return OfferSetStatus.EXPIRED
    return OfferSetStatus.REJECTED


def not_open(offer_id: str, state: str) -> OfferConflict:
    if state == OfferState.EXPIRED:
        return OfferConflict(f"offer {offer_id} expired", code=OFFER_EXPIRED)
    return OfferConflict(f"offer {offer_id} is {state}, not OFFERED", code=OFFER_NOT_OPEN)


def offer_view(row: Any) -> OfferView:
    w = json.loads(row.window)
    start, end = int(w["start_s"]), int(w["end_s"])
    accepted = row.state == OfferState.ACCEPTED and row.consumer_kind == ConsumerKind.LEASE
    return OfferView(
        id=row.id,
        offer_set_id=row.offer_set_id,
        position=row.position,
        strategy=Strategy(row.strategy),
        state=OfferState(row.state),
        expires=to_datetime(int(row.expires_s)),
        start=to_datetime(start),
        end=to_datetime(end),
        duration_s=end - start,
        placement=w["placement"],
        sites=w["sites"],
        resources=w["resources"],
        routes=[RouteView.model_validate(r) for r in w["routes"]],
        ports=[PortView.model_validate(p) for p in w["ports"]],
        score=float(w["score"]),
        lease=row.consumer_uuid if accepted else None,
        href=f"/v1/offers/{row.id}",
    )


__all__ = ["OFFER_EXPIRED", "OFFER_NOT_OPEN", "OfferConflict", "not_open", "offer_view", "set_status"]
