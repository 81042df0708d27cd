"""The ``Sweep`` contract of the lease event loop (decision 0049): a sweep's work must not change lease
events, because the loop may take its due read before the sweeps act. Enforced here, not at run time
(the tick pays nothing): every ``Sweep`` the composition root puts in the loop acts on real due work
with a guard that compares the lease events before and after, on SQLite and PostgreSQL; and the guard
itself catches a sweep that writes one."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import select
from test_offers import Bed, bed, epoch, shared  # noqa: F401 - the offers' fixtures: a bed with the FABRIC-like topology

from slotbroker.services.booking.lease_events import LeaseEventLoop, Sweep
from slotbroker.store.db import Database
from slotbroker.store.tables import lease_events
from slotbroker.store.unit_of_work import UnitOfWork


def _events(db: Database) -> list[tuple[Any, ...]]:
    with UnitOfWork(db, readonly=True) as uow:
        return [tuple(r) for r in uow.session.execute(select(lease_events).order_by(lease_events.c.id))]


def guarded(sweep: Sweep, acted: list[int]) -> Sweep:
    """``sweep`` whose ``act`` fails when it changed any lease event (``acted``: how much it was given)."""

    def act(now_s: int, due: Sequence[Any]) -> object:
        before = _events(sweep.db)
        done = sweep.act(now_s, due)
        assert _events(sweep.db) == before, f"the sweep {sweep!r} changed lease events"
        acted.append(len(due))
        return done

    return dataclasses.replace(sweep, act=act)


def _guard_sweeps(loop: LeaseEventLoop) -> tuple[list[int], int]:
    acted: list[int] = []
    sweeps = [i for i, job in enumerate(loop.periodic) if isinstance(job, Sweep)]
    for i in sweeps:
        job = loop.periodic[i]
        assert isinstance(job, Sweep)
        loop.periodic[i] = guarded(job, acted)
    return acted, len(sweeps)


def test_the_loops_sweeps_change_no_lease_event(bed: Bed) -> None:  # noqa: F811 - the fixture
    loop: LeaseEventLoop = bed.app.state.services.lease_events
    original = list(loop.periodic)
    try:
        acted, n = _guard_sweeps(loop)
        assert n >= 1  # the offers' expiry sweep at least
        # a lease with unfired events beside the offers, so a sweep that touched events would show
        taken = bed.post_set(bed.tight(hours=2), strategies=["earliest"], max_offers=1)
        r = bed.client.post(f"/v1/offers/{taken['offers'][0]['id']}/accept", headers=bed.admin)
        assert r.status_code == 200, r.text
        body = bed.post_set(bed.tight(hours=4), strategies=["earliest"], max_offers=2)
        assert _events(bed.db)
        loop.tick(epoch(body["expires"]))
        assert acted  # the sweep had real work: the offers expired under the guard
        assert {o["state"] for o in bed.get_set(body["id"])["offers"]} == {"EXPIRED"}
    finally:
        loop.periodic[:] = original


def test_the_guard_catches_a_sweep_that_writes_a_lease_event(bed: Bed) -> None:  # noqa: F811
    db = bed.db
    taken = bed.post_set(bed.tight(hours=2), strategies=["earliest"], max_offers=1)
    r = bed.client.post(f"/v1/offers/{taken['offers'][0]['id']}/accept", headers=bed.admin)
    assert r.status_code == 200, r.text
    with UnitOfWork(db, readonly=True) as uow:
        cid = int(uow.leases.find(r.json()["uuid"]).id)

    def read(uow: UnitOfWork, now_s: int) -> list[int]:
        return [cid]

    def act(now_s: int, due: Sequence[Any]) -> None:
        with UnitOfWork(db) as uow:
            uow.leases.add_event(cid, "cancelled", now_s)
            uow.commit()

    with pytest.raises(AssertionError, match="changed lease events"):
        guarded(Sweep(db, read=read, act=act), []).act(bed.t0, [cid])
