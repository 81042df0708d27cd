"""``LeaseRebooker.rebook`` (services/booking/lease_rebook.py): find-slot's answer to a request as if a
PENDING lease were gone; the lease kept when the answer is the lease (nothing written), moved onto it
in one transaction otherwise, and the answer is the one cancelling the lease and asking again gets."""

from __future__ import annotations

from collections import Counter
from typing import Any
from uuid import UUID

import pytest
from compact_world import NOW, World, at, world_fixture  # noqa: F401 - the fixture w

from slotbroker.domain.errors import NotFound
from slotbroker.services.booking.lease_rebook import KEPT, MOVED, NOT_PENDING
from slotbroker.wire.leases import CreateLease, LeaseItemSpec, LeaseView


def ask(count: int, duration: int, now: int = NOW) -> dict[str, Any]:
    return {
        "components": [{"name": "job", "count": count, "resources": {"VCPU": 1}}],
        "duration": duration,
        "earliest_start": at(now).isoformat(),
        "latest_end": at(now + 86400).isoformat(),
        "limit": 1,
        "alternates": 0,
        "explain": False,
    }


def book(w: World, doc: dict[str, Any], uuids: dict[str, str], now: int = NOW) -> LeaseView:
    """The request's first window as a lease, as a client books it."""
    window = w.svc.find_slot.find(doc, now_s=now, project="p").windows[0]
    items = [
        LeaseItemSpec(provider_uuid=uuids[h], resource_class="VCPU", amount=n)
        for h, n in Counter(window.placement["job"]).items()
    ]
    body = CreateLease(name="head", start=window.start, end=window.end, items=items)
    return w.svc.leases.create(body, project="p", now_s=now)


def names(w: World, hosts: list[str]) -> dict[str, str]:
    """Host name -> uuid."""
    return {w.svc.inventory.get_provider(UUID(h)).name: h for h in hosts}


def test_kept_when_the_answer_is_the_lease(w: World) -> None:
    hosts = w.site(2)
    w.lease(hosts, NOW, NOW + 300, project="other")
    lease = book(w, ask(2, 100), names(w, hosts))
    assert lease.start_s == NOW + 300
    generation = w.svc.calendar.generation()
    got = w.svc.rebooking.rebook(lease.id, ask(2, 100), project="p", now_s=NOW)
    assert got.outcome == KEPT
    assert got.window is not None
    assert got.window.start == at(NOW + 300)
    assert w.svc.leases.get(lease.id, project="p").generation == lease.generation
    assert w.svc.calendar.generation() == generation  # nothing written


def test_moved_where_cancelling_and_asking_again_would_go(w: World) -> None:
    hosts = w.site(3)
    uuids = names(w, hosts)
    w.lease(hosts[0], NOW, NOW + 200, project="other")
    second = w.lease(hosts[1], NOW, NOW + 400, project="other")
    w.lease(hosts[2], NOW, NOW + 500, project="other")
    lease = book(w, ask(2, 100), uuids)
    assert lease.start_s == NOW + 400  # two hosts free together only then
    w.svc.leases.cancel(second.id, project=None, now_s=NOW + 50)
    got = w.svc.rebooking.rebook(lease.id, ask(2, 100, NOW + 50), project="p", now_s=NOW + 50)
    assert got.outcome == MOVED
    assert got.window is not None
    moved = w.svc.leases.get(lease.id, project="p")
    assert (moved.start, moved.end) == (got.window.start, got.window.end)
    assert moved.start_s == NOW + 200
    assert sorted(it.provider_name for it in moved.items) == sorted(got.window.placement["job"])
    # the differential: the answer is the one the lease's cancel and a new question get
    w.svc.leases.cancel(lease.id, project="p", now_s=NOW + 50)
    again = w.svc.find_slot.find(ask(2, 100, NOW + 50), now_s=NOW + 50, project="p").windows[0]
    assert (again.start, again.placement) == (got.window.start, got.window.placement)


def test_moved_with_its_own_rows_out_of_the_way(w: World) -> None:
    """The earlier window overlaps the lease's own booking: found only as if the lease were gone."""
    (h,) = w.site(1)
    blocker = w.lease(h, NOW, NOW + 100, project="other")
    lease = book(w, ask(1, 300), names(w, [h]))
    assert lease.start_s == NOW + 100
    w.svc.leases.cancel(blocker.id, project=None, now_s=NOW + 20)
    got = w.svc.rebooking.rebook(lease.id, ask(1, 300, NOW + 20), project="p", now_s=NOW + 20)
    assert got.outcome == MOVED
    assert w.svc.leases.get(lease.id, project="p").start_s == NOW + 20


def test_a_started_lease_is_left_as_it_is(w: World) -> None:
    (h,) = w.site(1)
    lease = book(w, ask(1, 100), names(w, [h]))
    assert lease.status == "ACTIVE"
    got = w.svc.rebooking.rebook(lease.id, ask(1, 100), project="p", now_s=NOW)
    assert (got.outcome, got.reason) == (None, NOT_PENDING)
    assert w.svc.leases.get(lease.id, project="p").generation == lease.generation


def test_another_projects_lease_is_not_found(w: World) -> None:
    hosts = w.site(1)
    w.lease(hosts, NOW, NOW + 100, project="other")
    lease = book(w, ask(1, 100), names(w, hosts))
    with pytest.raises(NotFound):
        w.svc.rebooking.rebook(lease.id, ask(1, 100), project="other", now_s=NOW)
