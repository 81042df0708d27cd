"""The lease's hot writes run statements built once (store/repositories/leases.py) and ``cancel`` reads
its view in the writing transaction: on both databases (the ``db`` fixture), what the writes leave and
what they answer is what a later read sees."""

from __future__ import annotations

from test_leases import T0, World

from slotbroker.domain.claims import ConsumerStatus
from slotbroker.services.booking.lease_end import end_now
from slotbroker.services.booking.lease_events import LeaseEventLoop
from slotbroker.services.booking.leases import LeasePolicy
from slotbroker.store.db import Database
from slotbroker.store.unit_of_work import UnitOfWork

POLICY = LeasePolicy(before_end_notice_s=30)


def test_a_new_leases_views_are_what_a_later_read_sees(db: Database) -> None:
    world = World(db, POLICY)
    created = world.create()
    assert created.status == ConsumerStatus.PENDING.value
    assert created == world.leases.get(created.id, project="sci")
    cancelled = world.leases.cancel(created.id, project="sci")
    assert cancelled.status == ConsumerStatus.CANCELLED.value
    assert cancelled == world.leases.get(created.id, project="sci")
    assert [t.status for t in cancelled.transitions] == ["PENDING", "CANCELLED"]
    again = world.leases.cancel(created.id, project="sci")  # nothing changes, the same view
    assert again == cancelled


def test_events_fire_and_end_early_through_the_prebuilt_statements(db: Database) -> None:
    world = World(db, POLICY)
    lease = world.create(start=T0, end=T0 + 100)
    loop = LeaseEventLoop(db, world.claims, world.hooks, clock=world.clock)
    assert loop.tick(T0) == 1  # start
    assert world.leases.get(lease.id, project="sci").status == ConsumerStatus.ACTIVE.value
    end_now(world.leases, lease.id, now_s=T0 + 10)
    ended = world.leases.get(lease.id, project="sci")
    assert (ended.status, ended.end_s) == (ConsumerStatus.ENDED.value, T0 + 10)
    fired = {e.kind: e.fired_at is not None for e in ended.events}
    # the end is recorded as fired at the early end; the unfired before_end was dropped
    assert fired == {"start": True, "end": True}
    assert [t.status for t in ended.transitions] == ["PENDING", "ACTIVE", "ENDED"]
    assert [(int(i.start.timestamp()), int(i.end.timestamp())) for i in ended.items] == [(T0, T0 + 10)]
    assert loop.tick(T0 + 100) == 0  # nothing left to fire: the unfired events were dropped
    with UnitOfWork(db, readonly=True) as uow:
        assert uow.leases.unfired_event(int(uow.leases.find(lease.id).id), "end") is None
