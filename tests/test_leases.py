"""Leases on real databases (SQLite and PostgreSQL through the ``db`` fixture): create/list/get with
keyset paging, project isolation, extend/shorten/move with the capacity re-check (and host swaps),
cancel, policies (duration, quotas, extension window), generations, events fired once in order with an
injected clock, the HTTP API and the iCalendar feed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from slotbroker.api.app import create_app
from slotbroker.config import Settings
from slotbroker.domain.claims import ClaimItem, ClaimRequest, ConsumerKind, ConsumerSpec
from slotbroker.domain.errors import (
    CapacityConflict,
    ConcurrentUpdate,
    Forbidden,
    NotFound,
    SlotbrokerError,
)
from slotbroker.domain.inventory import Inventory
from slotbroker.domain.providers import ProviderKind
from slotbroker.services.claims import ClaimService
from slotbroker.services.ical import fold
from slotbroker.services.inventory import InventoryService
from slotbroker.services.lease_events import LeaseEvent, LeaseEventLoop, LeaseHooks
from slotbroker.services.leases import LeasePolicy, LeaseService
from slotbroker.services.quotas import QuotaService, peak
from slotbroker.services.tokens import Role, TokenService
from slotbroker.store.db import Database
from slotbroker.store.models import AllocationRow, LeaseEventRow
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire import providers as cmd
from slotbroker.wire.leases import CreateLease, LeaseItemSpec, LeaseView, SetQuota, UpdateLease

T0 = 1_900_000_000
NOW = T0 - 1000
_names = itertools.count()


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def make_site(db: Database) -> str:
    body = cmd.CreateProvider(name=f"LSITE{next(_names)}", kind=ProviderKind.SITE)
    return InventoryService(db).create_provider(body).uuid


def make_host(db: Database, site: str, vcpu: int = 8, traits: tuple[str, ...] = ()) -> str:
    body = cmd.CreateProvider(
        name=f"lhost{next(_names)}",
        kind=ProviderKind.HOST,
        parent_uuid=site,  # pydantic parses the str
        traits=list(traits),
        inventories={"VCPU": Inventory(total=vcpu), "MEMORY_MB": Inventory(total=1024)},
    )
    return InventoryService(db).create_provider(body).uuid


class Clock:
    def __init__(self, now: int = NOW) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class World:
    def __init__(self, db: Database, policy: LeasePolicy) -> None:
        self.db = db
        self.clock = Clock()
        self.claims = ClaimService(db, clock=self.clock)
        self.quotas = QuotaService(db)
        self.hooks = LeaseHooks()
        self.leases = LeaseService(
            db, self.claims, self.quotas, policy=policy, hooks=self.hooks, clock=self.clock
        )
        self.loop = LeaseEventLoop(db, self.claims, self.hooks, clock=self.clock)
        self.site = make_site(db)
        self.host = make_host(db, self.site)

    def create(
        self,
        start: int = T0,
        end: int = T0 + 100,
        vcpu: int = 8,
        host: str | None = None,
        project: str = "sci",
    ) -> LeaseView:
        body = CreateLease(
            name=f"lease{next(_names)}",
            start=at(start),
            end=at(end),
            items=[LeaseItemSpec(provider_uuid=host or self.host, resource_class="VCPU", amount=vcpu)],
        )
        return self.leases.create(body, project=project)

    def update(self, lease: LeaseView, project: str | None = "sci", **times: int | bool) -> LeaseView:
        body: dict[str, Any] = {"generation": lease.generation}
        for key, value in times.items():
            body[key] = at(value) if key in ("start", "end") else value
        return self.leases.update(lease.id, UpdateLease(**body), project=project)

    def allocations(self) -> list[tuple[str, int, int, int]]:
        with UnitOfWork(self.db, readonly=True) as uow:
            rows = uow.session.execute(
                select(
                    AllocationRow.consumer_id,
                    AllocationRow.amount,
                    AllocationRow.start_s,
                    AllocationRow.end_s,
                )
            ).all()
        return sorted((str(c), a, s, e) for c, a, s, e in rows)

    def generation(self) -> int:
        with UnitOfWork(self.db, readonly=True) as uow:
            return uow.calendar.generation()

    def fits(self, start: int, end: int, vcpu: int = 8, host: str | None = None) -> bool:
        spec = ConsumerSpec(ConsumerKind.LEASE, "other", start, end)
        try:
            self.claims.claim(ClaimRequest(spec, (ClaimItem(host or self.host, "VCPU", vcpu),)))
        except CapacityConflict:
            return False
        return True


@pytest.fixture
def w(db: Database) -> World:
    return World(db, LeasePolicy(max_duration_s=10_000, extension_window_s=500, before_end_notice_s=30))


def code_of(exc: pytest.ExceptionInfo[SlotbrokerError]) -> str:
    return exc.value.code


# -- create, read, paging, isolation ------------------------------------------------------------------------


def test_create_get_and_paging_is_stable_while_inserting(w: World) -> None:
    first = w.create(start=T0, end=T0 + 10, vcpu=1)
    assert first.status == "PENDING"
    assert first.project == "sci"
    assert first.generation == 0
    assert [(e.kind, e.fired_at) for e in first.events] == [
        ("start", None),
        ("before_end", None),
        ("end", None),
    ]
    assert first.items[0].provider_uuid == w.host
    assert first.items[0].amount == 1
    assert w.leases.get(first.id, project="sci") == first
    made = [first.id] + [w.create(start=T0 + i * 10, end=T0 + i * 10 + 10, vcpu=1).id for i in range(1, 5)]
    seen: list[str] = []
    cursor: str | None = None
    later: list[str] = []
    while True:
        page = w.leases.list(project="sci", cursor=cursor, limit=2)
        seen += [v.id for v in page.items]
        if len(later) < 3:
            later.append(w.create(start=T0 + 900, end=T0 + 910, vcpu=1).id)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    # newest first, every lease once; those made while paging are newer than the walk and left for the next
    assert seen == made[::-1]
    assert [v.id for v in w.leases.list(project="sci", limit=3).items] == later[::-1]
    assert [v.id for v in w.leases.list(project="sci", start_s=T0 + 15, end_s=T0 + 25).items] == [
        made[2],
        made[1],
    ]
    assert w.leases.list(project="sci", status=["ACTIVE"]).items == []


def test_start_in_the_past_is_active_at_once(w: World) -> None:
    w.clock.now = T0 + 5
    view = w.create(start=T0, end=T0 + 100)
    assert view.status == "ACTIVE"
    assert view.start_s == T0 + 5
    assert [t.status for t in view.transitions] == ["PENDING", "ACTIVE"]
    assert view.events[0].kind == "start"
    assert view.events[0].fired_at == at(T0 + 5)
    assert w.loop.tick(T0 + 6) == 0  # already fired


def test_projects_are_isolated(w: World) -> None:
    mine = w.create(vcpu=1, project="sci")
    theirs = w.create(vcpu=1, project="art")
    with pytest.raises(NotFound):
        w.leases.get(theirs.id, project="sci")
    with pytest.raises(NotFound):
        w.update(theirs, project="sci", end=T0 + 50)
    with pytest.raises(NotFound):
        w.leases.cancel(theirs.id, project="sci")
    assert [v.id for v in w.leases.list(project="sci").items] == [mine.id]
    assert {v.id for v in w.leases.list(project=None).items} == {mine.id, theirs.id}
    assert w.leases.get(theirs.id, project=None).project == "art"


# -- extend, shorten, move ----------------------------------------------------------------------------------


@pytest.mark.parametrize("active", [False, True])
def test_extend_into_another_lease_conflicts_and_changes_nothing(w: World, active: bool) -> None:
    a = w.create(start=T0, end=T0 + 100)
    w.create(start=T0 + 100, end=T0 + 200)
    w.clock.now = T0 - 300  # inside the extension window (the last 500 s)
    if active:
        w.clock.now = T0 + 50
        w.loop.tick(T0 + 50)
        a = w.leases.get(a.id, project="sci")
        assert a.status == "ACTIVE"
    before, gen = w.allocations(), w.generation()
    with pytest.raises(CapacityConflict) as info:
        w.update(a, end=T0 + 150)
    assert info.value.code == "capacity_conflict"
    assert w.leases.get(a.id, project="sci") == a
    assert w.allocations() == before
    assert w.generation() == gen


def test_shorten_then_extend_into_freed_time(w: World) -> None:
    a = w.create(start=T0, end=T0 + 100)
    w.clock.now = T0 + 10
    w.loop.tick(T0 + 10)
    a = w.leases.get(a.id, project="sci")
    short = w.update(a, end=T0 + 40)
    assert (short.end_s, short.generation) == (T0 + 40, a.generation + 1)
    assert [(i.start, i.end) for i in short.items] == [(at(T0), at(T0 + 40))]
    assert w.fits(T0 + 40, T0 + 60)  # someone else takes [40, 60)
    w.clock.now = T0 + 20
    with pytest.raises(CapacityConflict):
        w.update(short, end=T0 + 70)
    same = w.update(short, end=T0 + 40)  # no change: nothing happens
    assert same.generation == short.generation
    shorter = w.update(short, end=T0 + 35)
    assert {e.kind: e.due for e in shorter.events}["end"] == at(T0 + 35)
    assert w.fits(T0 + 35, T0 + 40, vcpu=8)


def test_move_pending_lease_reuses_its_own_capacity(w: World) -> None:
    a = w.create(start=T0, end=T0 + 100)
    gen = w.generation()
    moved = w.update(a, start=T0 + 50, end=T0 + 150)  # overlaps its old interval: only fits if freed first
    assert (moved.start_s, moved.end_s, moved.status) == (T0 + 50, T0 + 150, "PENDING")
    assert [(it.start, it.end) for it in moved.items] == [(at(T0 + 50), at(T0 + 150))]
    assert {e.kind: e.due for e in moved.events}["start"] == at(T0 + 50)
    assert w.generation() > gen
    assert w.fits(T0, T0 + 50)  # the old interval is free again
    assert len(w.allocations()) == 2


def test_move_pending_lease_swaps_a_taken_host(w: World) -> None:
    odd = make_host(w.db, w.site, traits=("HW_NIC_SRIOV",))  # different traits: never an alternate
    alt = make_host(w.db, w.site)
    a = w.create(start=T0, end=T0 + 100)
    blocker = w.create(start=T0 + 500, end=T0 + 600)  # takes the host later
    assert w.fits(T0 + 500, T0 + 600, host=odd)
    with pytest.raises(CapacityConflict):
        w.update(a, start=T0 + 500, end=T0 + 600, allow_host_swap=False)
    moved = w.update(a, start=T0 + 500, end=T0 + 600)
    assert [it.provider_uuid for it in moved.items] == [alt]
    assert w.leases.get(blocker.id, project="sci").items[0].provider_uuid == w.host
    assert w.fits(T0, T0 + 100)  # the old slot on the first host is free


def test_move_rules(w: World) -> None:
    a = w.create(start=T0, end=T0 + 100)
    with pytest.raises(SlotbrokerError) as info:
        w.update(a, start=NOW - 10)
    assert info.value.code == "validation_error"
    w.clock.now = T0 + 1
    w.loop.tick(T0 + 1)
    active = w.leases.get(a.id, project="sci")
    with pytest.raises(SlotbrokerError) as info:
        w.update(active, start=T0 + 10)
    assert info.value.code == "validation_error"


def test_stale_generation_is_refused(w: World) -> None:
    a = w.create()
    w.update(a, end=T0 + 90)
    with pytest.raises(ConcurrentUpdate) as info:
        w.update(a, end=T0 + 80)  # a.generation is stale now
    assert info.value.code == "concurrent_update"
    assert w.leases.get(a.id, project="sci").end_s == T0 + 90


# -- cancel --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("active", [False, True])
def test_cancel_frees_capacity_at_once_and_is_idempotent(w: World, active: bool) -> None:
    calls: list[str] = []
    w.leases.on_event("cancelled", lambda uow, ev: calls.append(ev.lease_id))
    a = w.create(start=T0, end=T0 + 100)
    if active:
        w.clock.now = T0 + 10
        w.loop.tick(T0 + 10)
    assert not w.fits(T0 + 20, T0 + 80)
    done = w.leases.cancel(a.id, project="sci")
    assert done.status == "CANCELLED"
    assert done.items == []
    assert [t.status for t in done.transitions][-1] == "CANCELLED"
    assert w.fits(T0 + 20, T0 + 80)
    again = w.leases.cancel(a.id, project="sci")
    assert again == done
    assert calls == [a.id]
    assert w.loop.tick(T0 + 1000) == 0  # its events were dropped
    with pytest.raises(ConcurrentUpdate) as info:
        w.update(done, end=T0 + 50)
    assert info.value.code == "invalid_state"


# -- policies ------------------------------------------------------------------------------------------------


def test_max_duration(w: World) -> None:
    with pytest.raises(Forbidden) as info:
        w.create(start=T0, end=T0 + 10_001)
    assert info.value.code == "lease_too_long"
    a = w.create(start=T0, end=T0 + 10_000)
    w.clock.now = T0 + 9_900
    with pytest.raises(Forbidden) as info:
        w.update(a, end=T0 + 10_100)
    assert info.value.code == "lease_too_long"


def test_extension_window(w: World) -> None:
    a = w.create(start=T0, end=T0 + 1000)
    w.clock.now = T0 + 100  # 900 s before the end; the window is the last 500 s
    with pytest.raises(CapacityConflict) as info:
        w.update(a, end=T0 + 1100)
    assert info.value.code == "outside_extension_window"
    assert w.update(a, end=T0 + 900).end_s == T0 + 900  # shortening is always allowed
    w.clock.now = T0 + 500
    a = w.leases.get(a.id, project="sci")
    assert w.update(a, end=T0 + 1100).end_s == T0 + 1100


def test_quotas(w: World) -> None:
    w.quotas.put("sci", "VCPU", SetQuota(max_concurrent=6))
    w.create(start=T0, end=T0 + 100, vcpu=4)
    w.create(start=T0 + 100, end=T0 + 200, vcpu=4)  # never concurrent with the first
    with pytest.raises(Forbidden) as info:
        w.create(start=T0 + 50, end=T0 + 60, vcpu=3)
    assert info.value.code == "quota_exceeded"
    assert info.value.errors[0].pointer == "/items/0"
    w.create(start=T0 + 50, end=T0 + 60, vcpu=2, project="art")  # other projects are not counted
    w.quotas.put("sci", "VCPU", SetQuota(max_resource_hours=1))  # 3600 VCPU-seconds from now on
    with pytest.raises(Forbidden) as info:
        w.create(start=T0 + 300, end=T0 + 3300, vcpu=1)  # 800 booked + 3000 > 3600
    assert info.value.code == "quota_exceeded"
    w.create(start=T0 + 300, end=T0 + 3000, vcpu=1)  # 800 + 2700 fits
    assert w.quotas.get("sci", "VCPU").max_resource_hours == 1
    w.quotas.delete("sci", "VCPU")
    with pytest.raises(NotFound):
        w.quotas.get("sci", "VCPU")


def test_peak_is_half_open() -> None:
    assert peak([(0, 10, 3), (10, 20, 4)], 0, 20) == 4
    assert peak([(0, 10, 3), (5, 20, 4)], 0, 20) == 7
    assert peak([(0, 10, 3)], 10, 20) == 0


# -- events --------------------------------------------------------------------------------------------------


def test_events_fire_once_in_order(w: World) -> None:
    calls: list[tuple[str, str, int]] = []

    def hook(uow: UnitOfWork, ev: LeaseEvent) -> None:
        calls.append((ev.lease_id, ev.kind, ev.fired_s))

    for kind in ("start", "before_end", "end"):
        w.loop.on_event(kind, hook)
    a = w.create(start=T0, end=T0 + 100)
    assert w.loop.tick(T0 - 1) == 0
    assert w.loop.tick(T0) == 1
    assert w.loop.tick(T0) == 0
    assert w.leases.get(a.id, project="sci").status == "ACTIVE"
    assert w.loop.tick(T0 + 70) == 1
    view = w.leases.get(a.id, project="sci")
    assert [n.kind for n in view.notices] == ["before_end"]
    assert w.loop.tick(T0 + 100) == 1
    assert w.loop.tick(T0 + 200) == 0
    ended = w.leases.get(a.id, project="sci")
    assert ended.status == "ENDED"
    assert [(t.status) for t in ended.transitions] == ["PENDING", "ACTIVE", "ENDED"]
    assert [(i.start, i.end) for i in ended.items] == [(at(T0), at(T0 + 100))]  # the past stays
    # A lease whose events are all overdue (the loop was down) fires them all, in order, once.
    b = w.create(start=T0 + 300, end=T0 + 400)
    assert w.loop.tick(T0 + 1000) == 3
    assert calls == [
        (a.id, "start", T0),
        (a.id, "before_end", T0 + 70),
        (a.id, "end", T0 + 100),
        (b.id, "start", T0 + 1000),
        (b.id, "before_end", T0 + 1000),
        (b.id, "end", T0 + 1000),
    ]
    assert w.loop.fired == {"start": 2, "before_end": 2, "end": 2}
    with UnitOfWork(w.db, readonly=True) as uow:
        assert uow.session.scalar(select(func.count()).where(LeaseEventRow.fired_at.is_(None))) == 0


def test_a_failing_hook_rolls_back_and_retries(w: World) -> None:
    boom = {"on": True}

    def hook(uow: UnitOfWork, ev: LeaseEvent) -> None:
        if boom["on"]:
            raise RuntimeError("planner down")

    w.loop.on_event("start", hook)
    a = w.create(start=T0, end=T0 + 100)
    assert w.loop.tick(T0) == 0
    assert w.loop.failures == 1
    assert w.leases.get(a.id, project="sci").status == "PENDING"
    boom["on"] = False
    assert w.loop.tick(T0 + 1) == 1
    assert w.leases.get(a.id, project="sci").status == "ACTIVE"


def test_periodic_jobs_run_each_tick(w: World) -> None:
    seen: list[int] = []
    w.loop.periodic.append(seen.append)
    w.loop.periodic.append(lambda now: 1 / 0)  # a failing job does not stop the others
    w.loop.tick(T0)
    w.loop.tick(T0 + 1)
    assert seen == [T0, T0 + 1]


def test_mark_error_keeps_capacity_until_released(w: World) -> None:
    a = w.create(start=T0, end=T0 + 100)
    err = w.leases.mark_error(a.id, "provisioning failed")
    assert err.status == "ERROR"
    assert not w.fits(T0, T0 + 100)
    assert w.leases.cancel(a.id, project="sci").status == "CANCELLED"
    assert w.fits(T0, T0 + 100)


# -- HTTP API ------------------------------------------------------------------------------------------------


@pytest.fixture
def api(db: Database) -> Iterator[tuple[TestClient, FastAPI]]:
    settings = Settings(
        database_url=db.url,
        migrate_on_start=False,
        rate_per_s=10_000,
        rate_burst=10_000,
        event_loop_interval_s=0,
        max_lease_duration_s=86400,
    )
    app = create_app(settings, db=db)
    with TestClient(app) as client:
        yield client, app


def headers(app: FastAPI, role: Role, project: str) -> dict[str, str]:
    secret = TokenService(app.state.services.db).create(project=project, role=role)
    return {"Authorization": f"Bearer {secret}"}


def test_http_lease_lifecycle_and_ical(api: tuple[TestClient, FastAPI], db: Database) -> None:
    client, app = api
    assert not app.state.services.lease_events.running  # disabled by event_loop_interval_s=0
    user, other, admin = (
        headers(app, Role.USER, "sci"),
        headers(app, Role.USER, "art"),
        headers(app, Role.ADMIN, "ops"),
    )
    host = make_host(db, make_site(db))
    now = int(datetime.now(UTC).timestamp())
    start, end = now + 3600, now + 7200

    def body(vcpu: int, s: int = start, e: int = end, **more: Any) -> dict[str, Any]:
        items = [{"provider_uuid": host, "resource_class": "VCPU", "amount": vcpu}]
        return {
            "name": "run, the; long \\ one " + "é" * 40,
            "start": at(s).isoformat(),
            "end": at(e).isoformat(),
            "items": items,
            **more,
        }

    r = client.post("/v1/leases", json=body(6), headers=user)
    assert r.status_code == 201, r.text
    lease = r.json()
    assert r.headers["Location"] == f"/v1/leases/{lease['id']}"
    assert lease["status"] == "PENDING"
    r = client.post("/v1/leases", json=body(4), headers=user)
    assert r.status_code == 409
    assert r.json()["code"] == "capacity_conflict"
    r = client.post("/v1/leases", json=body(1, e=start + 90_000), headers=user)
    assert r.status_code == 403
    assert r.json()["code"] == "lease_too_long"
    r = client.post("/v1/leases", json=body(1, project="art"), headers=user)
    assert r.status_code == 403
    assert client.get(f"/v1/leases/{lease['id']}", headers=other).status_code == 404
    assert client.get(f"/v1/leases/{lease['id']}", headers=admin).json()["project"] == "sci"
    assert [x["id"] for x in client.get("/v1/leases", headers=user).json()["items"]] == [lease["id"]]
    assert client.get("/v1/leases", headers=other).json()["items"] == []
    assert client.get("/v1/leases?project=sci", headers=admin).json()["items"][0]["id"] == lease["id"]

    # quotas: admin only
    assert client.put("/v1/quotas/sci/VCPU", json={"max_concurrent": 7}, headers=user).status_code == 403
    r = client.put("/v1/quotas/sci/VCPU", json={"max_concurrent": 7}, headers=admin)
    assert r.status_code == 200
    assert r.json()["max_concurrent"] == 7
    assert client.get("/v1/quotas/sci/VCPU", headers=admin).json()["max_concurrent"] == 7
    r = client.post("/v1/leases", json=body(2), headers=user)
    assert r.status_code == 403
    assert r.json()["code"] == "quota_exceeded"
    assert client.delete("/v1/quotas/sci/VCPU", headers=admin).status_code == 204
    assert client.get("/v1/quotas/sci/VCPU", headers=admin).status_code == 404

    # update with generation
    path = f"/v1/leases/{lease['id']}"
    r = client.patch(path, json={"generation": 0, "end": at(end - 600).isoformat()}, headers=user)
    assert r.status_code == 200
    assert r.json()["generation"] == 1
    r = client.patch(path, json={"generation": 0, "end": at(end - 1200).isoformat()}, headers=user)
    assert r.status_code == 409
    assert r.json()["code"] == "concurrent_update"
    assert client.patch(path, json={"generation": 1}, headers=other).status_code == 404

    # the iCalendar feed
    second = client.post("/v1/leases", json=body(1, s=end + 100, e=end + 200), headers=user).json()
    r = client.get("/v1/leases.ics", headers=user)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/calendar")
    raw = r.content
    assert raw.endswith(b"\r\n")
    assert b"\n" not in raw.replace(b"\r\n", b"")
    physical = raw.split(b"\r\n")[:-1]
    assert all(len(line) <= 75 for line in physical)
    assert any(line.startswith(b" ") for line in physical)  # the long SUMMARY was folded
    logical: list[str] = []
    for line in physical:
        if line.startswith(b" "):
            logical[-1] += line[1:].decode()
        else:
            logical.append(line.decode())
    assert logical[0] == "BEGIN:VCALENDAR"
    assert logical[-1] == "END:VCALENDAR"
    assert "VERSION:2.0" in logical
    assert any(x.startswith("PRODID:") for x in logical)
    events = [i for i, x in enumerate(logical) if x == "BEGIN:VEVENT"]
    assert len(events) == 2
    first = logical[events[0] : logical.index("END:VEVENT", events[0]) + 1]
    props = dict(x.split(":", 1) for x in first[1:-1])
    assert props["UID"] == f"{lease['id']}@slotbroker"
    assert props["DTSTART"] == at(start).strftime("%Y%m%dT%H%M%SZ")
    assert props["DTEND"] == at(end - 600).strftime("%Y%m%dT%H%M%SZ")
    assert props["DTSTAMP"].endswith("Z")
    assert props["STATUS"] == "CONFIRMED"
    assert props["SUMMARY"].startswith("run\\, the\\; long \\\\ one é")
    assert second["id"] in "".join(logical)
    assert "BEGIN:VEVENT" not in client.get("/v1/leases.ics", headers=other).text

    # cancel (POST and DELETE), idempotent; capacity comes back at once
    r = client.post(f"{path}/cancel", headers=user)
    assert r.status_code == 200
    assert r.json()["status"] == "CANCELLED"
    assert client.post(f"{path}/cancel", headers=user).json()["generation"] == r.json()["generation"]
    assert client.delete(path, headers=user).status_code == 204
    assert client.post("/v1/leases", json=body(8), headers=user).status_code == 201
    assert "STATUS:CANCELLED" in client.get("/v1/leases.ics?status=CANCELLED", headers=user).text


def test_fold_never_splits_a_character() -> None:
    line = "SUMMARY:" + "é" * 100
    folded = fold(line).encode()
    parts = folded.split(b"\r\n")[:-1]
    assert all(len(p) <= 75 for p in parts)
    assert b"".join(p[1:] if i else p for i, p in enumerate(parts)).decode() == line
