"""Offer sets renewable before they expire (issue 14): another TTL from now, never past created +
max_hold_s, never reviving a hold that expired."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI

from slotbroker.bootstrap import Services
from slotbroker.domain.limits import BookingPolicy
from slotbroker.domain.topology import Topology
from slotbroker.services.booking.offer_set_edits import OfferSetEditor
from slotbroker.services.booking.offer_states import OfferConflict
from slotbroker.wire.offers import OfferSetRequest

HOUR = 3600
TOPOLOGY = {
    "providers": [
        {
            "name": "S",
            "kind": "site",
            "children": [{"name": "h1", "kind": "host", "inventories": {"VCPU": 4, "MEMORY_MB": 4096}}],
        }
    ]
}


def request(now: int) -> dict[str, Any]:
    start = now - now % HOUR + 3 * HOUR
    return {
        "components": [{"name": "c", "resources": {"VCPU": 4}}],
        "earliest_start": datetime.fromtimestamp(start, UTC).isoformat(),
        "latest_end": datetime.fromtimestamp(start + HOUR, UTC).isoformat(),
        "duration": "PT1H",
    }


@pytest.fixture
def svc(app: FastAPI) -> Services:
    services: Services = app.state.services
    services.topology.import_(Topology.model_validate(TOPOLOGY))
    return services


def test_a_renewed_offer_can_be_accepted_after_its_first_expiry(svc: Services) -> None:
    now = int(time.time())  # the set's creation time is the database's clock: run near it
    made = svc.offers.create(OfferSetRequest(request=request(now), max_offers=1), project="p", now_s=now)
    ttl = svc.offers.settings.ttl_s
    assert made.offers
    assert made.offers[0].expires.timestamp() == now + ttl
    renewed = svc.offer_sets.renew(made.id, project="p", now_s=now + ttl - 10)
    assert renewed.expires.timestamp() == now + 2 * ttl - 10
    assert renewed.offers[0].expires == renewed.expires
    # the hold still keeps its capacity past the first expiry: nobody else gets the host
    other = svc.offers.create(
        OfferSetRequest(request=request(now), max_offers=1), project="q", now_s=now + ttl + 5
    )
    assert other.offers == []
    lease = svc.offers.accept(made.offers[0].id, project="p", now_s=now + ttl + 10)
    assert lease.status == "PENDING"


def test_renewal_is_capped_at_max_hold_and_refused_once_expired(svc: Services) -> None:
    now = int(time.time())  # the max_hold_s cap counts from the set's creation, on the database's clock
    editor = OfferSetEditor(svc.db, svc.offers, BookingPolicy(max_hold_s=400))
    ttl = svc.offers.settings.ttl_s
    assert ttl == 300
    made = svc.offers.create(OfferSetRequest(request=request(now), max_offers=1), project="p", now_s=now)
    created = made.created.timestamp()
    assert abs(created - now) < 30  # the database clock and this test's agree
    assert editor.renew(made.id, project="p", now_s=now + 200).expires.timestamp() == int(created) + 400
    with pytest.raises(OfferConflict) as refused:
        editor.renew(made.id, project="p", now_s=int(created) + 300)
    assert refused.value.code == "offer_not_open"
    cap = datetime.fromtimestamp(int(created) + 400, UTC).isoformat()
    assert refused.value.extensions["max_expires"] == cap
    with pytest.raises(OfferConflict) as late:
        editor.renew(made.id, project="p", now_s=int(created) + 401)
    assert late.value.code == "offer_expired"
    # the expired hold is not revived: another project gets the host now
    other = svc.offers.create(
        OfferSetRequest(request=request(now), max_offers=1), project="q", now_s=int(created) + 402
    )
    assert len(other.offers) == 1


def test_renew_over_http_by_name(app: FastAPI, svc: Services, client: Any, user: dict[str, str]) -> None:
    body = {"request": request(int(time.time())), "max_offers": 1, "name": "keep-me"}
    made = client.post("/v1/offer-sets", json=body, headers=user)
    assert made.status_code == 201, made.text
    r = client.post("/v1/offer-sets/keep-me/renew", headers=user)
    assert r.status_code == 200, r.text
    assert r.json()["expires"] >= made.json()["expires"]
    assert client.post("/v1/offer-sets/nothing-here/renew", headers=user).status_code == 404
