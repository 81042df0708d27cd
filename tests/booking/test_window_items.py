"""A window becomes the same claim items for offers and for allocation requests (``window_items``):
on the window's host an elastic class claims its grant, and an instance moved to an alternate claims
the minimum, on both paths. Both databases."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from test_allocation_requests import World, build_world, claim, find, iso

from slotbroker.domain.errors import FieldError
from slotbroker.services.booking.offer_search import Names, Plan, build_items, swap_to_alternate
from slotbroker.wire.find_slot import WindowView
from slotbroker.wire.offers import Strategy


@pytest.fixture
def world(app: FastAPI, client: TestClient, admin: dict[str, str]) -> World:
    return build_world(app, client, admin)


def elastic_doc(w: World) -> dict[str, Any]:
    return {
        "components": [
            {
                "name": "a",
                "resources": {"MEMORY_MB": 1024},
                "elastic": {"VCPU": {"min": 2, "max": 6}},
                "site": w.site_a,
            }
        ],
        "earliest_start": iso(w.start),
        "latest_end": iso(w.start + 6 * 3600),
        "duration": "PT1H",
        "limit": 1,
        "alternates": 3,
    }


def offer_vcpu(w: World, doc: dict[str, Any], win: dict[str, Any], *, swap: bool) -> tuple[str, int]:
    """(host, VCPU) an offer's hold of ``win`` claims, after a conflict on the chosen host if ``swap``."""
    services = w.app.state.services
    plan = Plan(
        strategy=Strategy.EARLIEST,
        window=WindowView.model_validate(win),
        request=services.find_slot.parse(doc),
        placement={c: list(hs) for c, hs in win["placement"].items()},
        resources={},
    )
    names = Names(w.db)
    build_items(plan, names)
    if swap:
        conflict = [FieldError("/items/0/amount", "taken")]
        assert swap_to_alternate(plan, conflict, set())
        build_items(plan, names)
    uuid_to_name = {u: n for n, u in w.hosts.items()}
    (item,) = [it for it in plan.items if it.resource_class == "VCPU"]
    return uuid_to_name[item.provider_uuid], item.amount


def claimed_vcpu(out: dict[str, Any]) -> tuple[str, int]:
    (row,) = [a for a in out["allocations"] if a["resource_class"] == "VCPU"]
    return str(row["provider_name"]), int(row["amount"])


def test_the_chosen_host_claims_the_grant_on_both_paths(world: World) -> None:
    doc = elastic_doc(world)
    win = find(world, doc)["windows"][0]
    assert win["grants"]["a"] == [{"VCPU": 6}]
    r = claim(world, {"allocation_request": win["allocation_request"], "consumer": {"kind": "hold"}})
    assert r.status_code == 201, r.text
    assert claimed_vcpu(r.json()) == offer_vcpu(world, doc, win, swap=False) == (win["placement"]["a"][0], 6)


def test_an_alternate_claims_the_minimum_on_both_paths(world: World) -> None:
    doc = elastic_doc(world)
    win = find(world, doc)["windows"][0]
    chosen, alternate = win["placement"]["a"][0], win["alternates"]["a"][0]
    s = int(datetime.fromisoformat(win["start"]).timestamp())
    e = int(datetime.fromisoformat(win["end"]).timestamp())
    taken = claim(
        world,
        {
            "items": [{"provider_uuid": world.hosts[chosen], "resource_class": "VCPU", "amount": 8}],
            "start": iso(s),
            "end": iso(e),
            "consumer": {"kind": "lease"},
        },
    )
    assert taken.status_code == 201, taken.text
    r = claim(world, {"allocation_request": win["allocation_request"], "consumer": {"kind": "hold"}})
    assert r.status_code == 201, r.text
    out = r.json()
    assert [(s["from_host"], s["to_host"]) for s in out["swaps"]] == [(chosen, alternate)]
    assert claimed_vcpu(out) == offer_vcpu(world, doc, win, swap=True) == (alternate, 2)
