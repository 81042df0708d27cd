"""What the offers API reads and answers: offer-set requests, offer sets, offers and the accepted lease."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from slotbroker.domain.strict import Int
from slotbroker.wire.display import Tabular, hosts
from slotbroker.wire.find_slot import ExplanationView, PortView, RouteView


class Strategy(StrEnum):
    """How an offer is chosen (IVOA ExecutionBroker: "one offer from each algorithm").

    * ``earliest``: the earliest windows (consecutive starts, fitted around bookings);
    * ``largest``: every requested amount made elastic up to twice the request, taking what is free;
    * ``longest``: the longest duration up to ``max_duration`` (when the request gives a range);
    * ``best_fit``: windows ranked by the ``best_fit`` policy (fullest hosts first).
    """

    EARLIEST = "earliest"
    LARGEST = "largest"
    LONGEST = "longest"
    BEST_FIT = "best_fit"


ALL_STRATEGIES = [Strategy.EARLIEST, Strategy.LARGEST, Strategy.LONGEST, Strategy.BEST_FIT]


class OfferSetStatus(StrEnum):
    OPEN = "OPEN"  # at least one offer can still be accepted
    ACCEPTED = "ACCEPTED"  # one offer became a lease; the others were rejected
    REJECTED = "REJECTED"  # no offer open any more and at least one was rejected
    EXPIRED = "EXPIRED"  # every offer expired
    EMPTY = "EMPTY"  # nothing fitted: no offer was made


class OfferState(StrEnum):
    OFFERED = "OFFERED"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


class OfferSetRequest(BaseModel):
    """``POST /v1/offer-sets``: a find-slot request and how to turn its windows into offers."""

    model_config = ConfigDict(extra="forbid")

    request: dict[str, Any] = Field(description="A find-slot request (see SlotRequest).")
    strategies: list[Strategy] = Field(
        default_factory=lambda: list(ALL_STRATEGIES),
        min_length=1,
        max_length=8,
        description="Strategies taken in turn, one offer each, until max_offers offers are made.",
    )
    max_offers: Int = Field(4, ge=1, le=10)
    name: str = Field(
        "",
        max_length=200,
        description="Yours to choose: the set answers to it wherever its id is taken, and the lease an "
        "accepted offer becomes is given it.",
    )


class OfferSetPatch(BaseModel):
    """``PATCH /v1/offer-sets/{id}``: rename the set."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=200)


class OfferView(BaseModel):
    id: str
    offer_set_id: str
    position: int = Field(description="Order in the set (0-based).")
    strategy: Strategy
    state: OfferState
    expires: datetime = Field(description="After this the offer is EXPIRED and its capacity free.")
    start: datetime
    end: datetime
    duration_s: int
    placement: dict[str, list[str]] = Field(description="Component -> one host per instance.")
    sites: dict[str, str] = Field(description="Component -> site.")
    resources: dict[str, list[dict[str, int]]] = Field(
        description="Component -> per-instance amounts held (elastic grants included)."
    )
    routes: list[RouteView]
    ports: list[PortView]
    score: float
    lease: str | None = Field(None, description="The lease's uuid once the offer is accepted.")
    href: str


class OfferSetView(Tabular, BaseModel):
    id: str
    name: str = ""
    status: OfferSetStatus
    project: str
    created: datetime
    expires: datetime
    strategies: list[Strategy]
    offers: list[OfferView]
    explanation: ExplanationView | None = Field(
        None, description="Why nothing fits, when the set is EMPTY and the search could say."
    )
    href: str

    def records(self) -> list[dict[str, Any]]:
        return [
            {
                "offer": o.id,
                "strategy": o.strategy.value,
                "state": o.state.value,
                "start": o.start,
                "end": o.end,
                "expires": o.expires,
                "hosts": hosts(o.placement),
            }
            for o in self.offers
        ]


class AcceptedLease(BaseModel):
    """The lease an accepted offer became (its hold's allocations, now without expiry)."""

    uuid: str
    status: str = Field(description="PENDING, or ACTIVE when the lease starts at or before now.")
    project: str
    start: datetime
    end: datetime
    duration_s: int
    placement: dict[str, list[str]]
    sites: dict[str, str]
    resources: dict[str, list[dict[str, int]]]
    routes: list[RouteView]
    ports: list[PortView]
    offer_id: str
    offer_set_id: str
