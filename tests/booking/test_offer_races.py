"""Offer races on PostgreSQL with real threads, released together by a barrier, many trials each.

* accept vs expiry: one thread accepts a second before the expiry while the offers sweeper and the
  claims' hold reaper run at the expiry instant. Either the accept wins (a lease with all its
  allocations, the sibling rejected) or expiry wins (the accept is refused with ``offer_expired``, the
  hold EXPIRED with no allocations) -- never both, never a lease whose allocations were released;
* two accepts in one offer set: exactly one wins, the other is ``offer_not_open``;
* concurrent offer sets on one GPU host: their holds never overlap (the claim is the authority).

The SQL audits (``overbooked``, ``vlan_clashes``) stay empty throughout.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import func, select

from conftest import PG_URL, require_postgres, reset_postgres
from slotbroker.domain.errors import SlotbrokerError
from slotbroker.domain.inventory import Inventory
from slotbroker.domain.providers import ProviderKind
from slotbroker.services.booking.claims import ClaimService
from slotbroker.services.booking.offer_states import OfferConflict
from slotbroker.services.booking.offers import OfferService
from slotbroker.services.find_slot.calendar_cache import CalendarCache
from slotbroker.services.find_slot.service import FindSlotService
from slotbroker.services.inventory.service import InventoryService
from slotbroker.store import migrate
from slotbroker.store.db import Database
from slotbroker.store.models import AllocationRow, ConsumerRow, LeaseEventRow, OfferRow
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire import providers as cmd
from slotbroker.wire.offers import OfferSetRequest, OfferSetView

HOUR = 3600
DAY = 24 * HOUR
TRIALS = 25
HOST = "race-gpu-1"


@pytest.fixture(scope="module")
def pg() -> Iterator[Database]:
    require_postgres()
    reset_postgres(PG_URL)
    db = Database(PG_URL)
    migrate.upgrade(db.engine)
    inv = InventoryService(db)
    site = inv.create_provider(cmd.CreateProvider(name="race-site", kind=ProviderKind.SITE))
    inv.create_provider(
        cmd.CreateProvider(
            name=HOST,
            kind=ProviderKind.HOST,
            parent_uuid=site.uuid,  # pydantic parses the str
            inventories={"VCPU": Inventory(total=8), "GPU_A30": Inventory(total=1)},
        )
    )
    yield db
    db.dispose()


@pytest.fixture(scope="module")
def svc(pg: Database) -> OfferService:
    claims = ClaimService(pg)
    return OfferService(pg, claims, FindSlotService(pg, CalendarCache(pg)))


class Days:
    """Hands each trial its own day, so trials never compete for capacity with earlier ones."""

    def __init__(self) -> None:
        now = int(time.time())
        self.next = now - now % HOUR + 2 * HOUR

    def take(self) -> int:
        self.next += DAY
        return self.next - DAY


@pytest.fixture(scope="module")
def days() -> Days:
    return Days()


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def offer_set(svc: OfferService, start: int, offers: int = 2) -> OfferSetView:
    """All of the host's GPU for an hour, within six hours from ``start``: ``offers`` consecutive offers."""
    request = {
        "components": [{"name": "gpu", "host": HOST, "resources": {"GPU_A30": 1, "VCPU": 2}}],
        "earliest_start": iso(start),
        "latest_end": iso(start + 6 * HOUR),
        "duration": "PT1H",
    }
    body = OfferSetRequest(request=request, strategies=["earliest"], max_offers=offers)
    view = svc.create(body, project="race")
    assert len(view.offers) == offers, view
    return view


def race(tasks: list[Callable[[], Any]]) -> list[Any]:
    """Run the tasks in threads released together; each result or the SlotbrokerError it raised."""
    barrier = threading.Barrier(len(tasks))

    def run(task: Callable[[], Any]) -> Any:
        barrier.wait(timeout=30)
        try:
            return task()
        except SlotbrokerError as exc:
            return exc

    with ThreadPoolExecutor(len(tasks)) as pool:
        return list(pool.map(run, tasks))


def later(delay: float, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    if delay:
        time.sleep(delay)
    return fn(*args, **kwargs)


def consumer_of(db: Database, offer_id: str) -> tuple[int, str, str, int]:
    """(id, kind, status, allocation rows) of the offer's consumer."""
    with UnitOfWork(db, readonly=True) as uow:
        cid, kind, status = uow.session.execute(
            select(ConsumerRow.id, ConsumerRow.kind, ConsumerRow.status)
            .join(OfferRow, OfferRow.consumer_id == ConsumerRow.id)
            .where(OfferRow.id == offer_id)
        ).one()
        rows = uow.session.scalar(
            select(func.count()).select_from(AllocationRow).where(AllocationRow.consumer_id == cid)
        )
        return int(cid), str(kind), str(status), int(rows or 0)


def audit_clean(db: Database) -> None:
    with UnitOfWork(db, readonly=True) as uow:
        assert uow.allocations.overbooked() == []
        assert uow.allocations.vlan_clashes() == []
        # no lease has lost its allocations, no live hold is missing them
        leases = uow.session.execute(
            select(ConsumerRow.id, func.count(AllocationRow.id))
            .outerjoin(AllocationRow, AllocationRow.consumer_id == ConsumerRow.id)
            .where(ConsumerRow.kind == "lease")
            .group_by(ConsumerRow.id)
        ).all()
        assert all(n == 2 for _, n in leases), leases


def test_accept_races_expiry_exactly_one_wins(pg: Database, svc: OfferService, days: Days) -> None:
    claims = svc.claims
    outcomes: Counter[str] = Counter()
    for trial in range(TRIALS):
        view = offer_set(svc, days.take())
        offer, sibling = view.offers
        expiry = int(view.expires.timestamp())
        # a third of the trials give the accept a head start, a third the expirers, a third neither
        head = {0: (0.0, 0.005), 1: (0.005, 0.0), 2: (0.0, 0.0)}[trial % 3]
        accept, swept, reaped = race(
            [
                partial(later, head[0], svc.accept, offer.id, project=None, now_s=expiry - 1),
                partial(later, head[1], svc.expire_due, expiry),
                partial(later, head[1], claims.expire_holds, now_s=expiry),
            ]
        )
        assert not isinstance(swept, SlotbrokerError)
        assert not isinstance(reaped, SlotbrokerError)
        final = svc.offer_set(view.id, project=None, now_s=expiry)
        states = [o.state for o in final.offers]
        cid, kind, status, rows = consumer_of(pg, offer.id)
        if isinstance(accept, OfferConflict):
            outcomes["expiry"] += 1
            assert accept.code == "offer_expired"
            assert (kind, status, rows) == ("hold", "EXPIRED", 0)
            assert states == ["EXPIRED", "EXPIRED"]
            assert final.status == "EXPIRED"
        else:
            outcomes["accept"] += 1
            assert not isinstance(accept, SlotbrokerError), accept
            assert accept.uuid == final.offers[0].lease
            assert (kind, status, rows) == ("lease", "PENDING", 2)
            assert states == ["ACCEPTED", "REJECTED"]
            assert final.status == "ACCEPTED"
            with UnitOfWork(pg, readonly=True) as uow:
                events = uow.session.scalar(
                    select(func.count()).select_from(LeaseEventRow).where(LeaseEventRow.consumer_id == cid)
                )
            assert events == 3
        _, _, sib_status, sib_rows = consumer_of(pg, sibling.id)
        assert sib_status in ("EXPIRED", "REJECTED")
        assert sib_rows == 0
    assert sum(outcomes.values()) == TRIALS
    with UnitOfWork(pg, readonly=True) as uow:
        assert uow.allocations.lease_count() == outcomes["accept"]
    audit_clean(pg)
    print(f"accept vs expiry over {TRIALS} trials: {dict(outcomes)}")


def test_two_accepts_in_one_set_exactly_one_wins(pg: Database, svc: OfferService, days: Days) -> None:
    with UnitOfWork(pg, readonly=True) as uow:
        leases_before = uow.allocations.lease_count()
    for _ in range(TRIALS):
        view = offer_set(svc, days.take(), offers=3)
        a, b, c = view.offers
        got = race([partial(svc.accept, a.id, project=None), partial(svc.accept, b.id, project="race")])
        winners = [g for g in got if not isinstance(g, SlotbrokerError)]
        losers = [g for g in got if isinstance(g, SlotbrokerError)]
        assert len(winners) == 1, got
        assert len(losers) == 1
        assert isinstance(losers[0], OfferConflict)
        assert losers[0].code == "offer_not_open"
        final = svc.offer_set(view.id, project="race")
        assert final.status == "ACCEPTED"
        assert sorted(o.state for o in final.offers) == ["ACCEPTED", "REJECTED", "REJECTED"]
        for o in final.offers:
            _, kind, status, rows = consumer_of(pg, o.id)
            if o.state == "ACCEPTED":
                assert (kind, status, rows) == ("lease", "PENDING", 2)
                assert o.lease == winners[0].uuid
            else:
                assert (kind, status, rows) == ("hold", "REJECTED", 0)
        assert c.state == "OFFERED"  # (the view from before the race)
    with UnitOfWork(pg, readonly=True) as uow:
        assert uow.allocations.lease_count() == leases_before + TRIALS
    audit_clean(pg)


def test_concurrent_offer_sets_never_overlap_on_one_gpu(pg: Database, svc: OfferService, days: Days) -> None:
    for _ in range(3):
        start = days.take()
        sets = race([partial(_create, svc, start) for _ in range(4)])
        assert not any(isinstance(s, SlotbrokerError) for s in sets), sets
        offers = [o for s in sets for o in s.offers]
        assert offers, "something was offered"
        assert len(offers) <= 6  # six one-hour slots in the range
        spans = sorted((int(o.start.timestamp()), int(o.end.timestamp())) for o in offers)
        for (_, end), (nxt, _) in pairwise(spans):
            assert end <= nxt, spans
        audit_clean(pg)


def _create(svc: OfferService, start: int) -> OfferSetView:
    request = {
        "components": [{"name": "gpu", "host": HOST, "resources": {"GPU_A30": 1, "VCPU": 2}}],
        "earliest_start": iso(start),
        "latest_end": iso(start + 6 * HOUR),
        "duration": "PT1H",
    }
    return svc.create(OfferSetRequest(request=request, strategies=["earliest"], max_offers=2), project="race")
