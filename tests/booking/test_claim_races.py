"""Races on real databases: many clients want the last few units at once; exactly as many win as fit.

PostgreSQL (threads and spawned processes, each process with its own ``Database``): per trial a fresh
host whose capacity is booked up to its last K units, N clients each claim one unit at overlapping
times, released together by a barrier. Exactly K succeed, the rest get ``capacity_conflict`` (or
``concurrent_update`` if a retry budget ran out, counted and expected to be zero with row locks), and
the SQL audit never shows overbooking. The same for one VLAN tag (exactly one wins), for claims that
list two hosts in opposite orders (the id-ordered lock must not deadlock), for concurrent releases
(exactly one does the work), and on a SQLite file with threads (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import multiprocessing as mp
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from conftest import PG_URL, require_postgres, reset_postgres
from slotbroker.domain.claims import ClaimItem, ClaimRequest, ConsumerKind, ConsumerSpec
from slotbroker.domain.errors import CapacityConflict, ConcurrentUpdate
from slotbroker.domain.inventory import Inventory
from slotbroker.domain.providers import ProviderKind
from slotbroker.services.booking.claims import ClaimService
from slotbroker.services.inventory.network import NetworkService
from slotbroker.services.inventory.service import InventoryService
from slotbroker.store import migrate
from slotbroker.store.db import Database
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire import providers as cmd

T0 = 1_900_000_000
NOW = T0 - 1000
CAPACITY = 20
K = 5
THREADS = 16
TRIALS = 20


# -- setup ------------------------------------------------------------------------------------------------


def migrated(url: str) -> Database:
    db = Database(url)
    migrate.upgrade(db.engine)
    return db


@pytest.fixture(scope="module")
def pg() -> Iterator[Database]:
    require_postgres()
    reset_postgres(PG_URL)
    db = migrated(PG_URL)
    yield db
    db.dispose()


class Topo:
    """Creates uniquely named sites, hosts and ports in one database."""

    def __init__(self, db: Database, prefix: str) -> None:
        self.db = db
        self.prefix = prefix
        self.n = 0
        self.site_uuid, self.site_name = self._site()

    def _name(self, kind: str) -> str:
        self.n += 1
        return f"{self.prefix}-{kind}{self.n}"

    def _site(self) -> tuple[str, str]:
        name = self._name("site")
        view = InventoryService(self.db).create_provider(
            cmd.CreateProvider(name=name, kind=ProviderKind.SITE)
        )
        return view.uuid, name

    def host(self, vcpus: int) -> str:
        body = cmd.CreateProvider(
            name=self._name("host"),
            kind=ProviderKind.HOST,
            parent_uuid=self.site_uuid,  # pydantic parses the str
            inventories={"VCPU": Inventory(total=vcpus)},
        )
        return InventoryService(self.db).create_provider(body).uuid

    def port(self, vlans: str) -> str:
        body = cmd.CreateFacilityPort(
            name=self._name("port"), site=self.site_name, vlans=vlans, bandwidth_gbps=100
        )
        return NetworkService(self.db).create_port(body).uuid


def lease(*items: ClaimItem, start: int = T0, end: int = T0 + 20) -> ClaimRequest:
    return ClaimRequest(ConsumerSpec(ConsumerKind.LEASE, "race", start, end), items)


def one_unit(host: str, i: int) -> ClaimRequest:
    """Client ``i``'s claim: one VCPU at a slightly shifted interval; all of them overlap [T0+3, T0+20)."""
    shift = i % 4
    return lease(ClaimItem(host, "VCPU", 1), start=T0 + shift, end=T0 + 20 + shift)


def outcome(svc: ClaimService, request: ClaimRequest) -> str:
    try:
        svc.claim(request, now_s=NOW)
    except CapacityConflict:
        return "conflict"
    except ConcurrentUpdate:
        return "gave_up"
    return "ok"


def race(n: int, task: Callable[[int], str]) -> Counter[str]:
    """Run ``task(0..n-1)`` in ``n`` threads released together by a barrier."""
    barrier = threading.Barrier(n)

    def run(i: int) -> str:
        barrier.wait(timeout=30)
        return task(i)

    with ThreadPoolExecutor(n) as pool:
        return Counter(pool.map(run, range(n)))


def audit_clean(db: Database) -> None:
    with UnitOfWork(db, readonly=True) as uow:
        assert uow.allocations.overbooked() == []
        assert uow.allocations.vlan_clashes() == []


def book_all_but(svc: ClaimService, host: str, left: int) -> None:
    svc.claim(lease(ClaimItem(host, "VCPU", CAPACITY - left), start=T0, end=T0 + 30), now_s=NOW)


# -- PostgreSQL, threads ---------------------------------------------------------------------------


@pytest.mark.postgres
def test_threads_race_for_the_last_units(pg: Database) -> None:
    topo = Topo(pg, "threads")
    svc = ClaimService(pg, max_attempts=10)
    totals: Counter[str] = Counter()
    for _ in range(TRIALS):
        host = topo.host(CAPACITY)
        book_all_but(svc, host, K)
        got = race(THREADS, lambda i, h=host: outcome(svc, one_unit(h, i)))  # type: ignore[misc]
        totals.update(got)
        assert got["ok"] == K, got
        assert got["ok"] + got["conflict"] + got["gave_up"] == THREADS
        audit_clean(pg)
    assert totals["gave_up"] == 0, totals  # row locks queue the losers; nobody needs a retry budget


@pytest.mark.postgres
def test_opposite_item_orders_do_not_deadlock(pg: Database) -> None:
    """Half the clients list host A first, half host B first: locks are taken in id order anyway."""
    topo = Topo(pg, "order")
    svc = ClaimService(pg, max_attempts=10)
    for _ in range(5):
        a, b = topo.host(CAPACITY), topo.host(CAPACITY)
        book_all_but(svc, a, K)
        book_all_but(svc, b, K + 3)

        def claim(i: int, a: str = a, b: str = b) -> str:
            items = [ClaimItem(a, "VCPU", 1), ClaimItem(b, "VCPU", 1)]
            return outcome(svc, lease(*(items if i % 2 else items[::-1])))

        got = race(THREADS, claim)
        assert got["ok"] == K, got
        assert got["gave_up"] == 0, got
        audit_clean(pg)


@pytest.mark.postgres
def test_threads_race_for_one_vlan_tag(pg: Database) -> None:
    topo = Topo(pg, "vlan")
    port = topo.port("100-199")
    svc = ClaimService(pg, max_attempts=10)
    for trial in range(10):
        tag = 100 + trial

        def claim(i: int, tag: int = tag) -> str:
            shift = i % 5
            return outcome(
                svc, lease(ClaimItem(port, "VLAN", 1, vlan_tag=tag), start=T0 + shift, end=T0 + 10 + shift)
            )

        got = race(THREADS, claim)
        assert got["ok"] == 1, got
        assert got["conflict"] == THREADS - 1, got
        audit_clean(pg)


@pytest.mark.postgres
def test_concurrent_releases_do_the_work_once(pg: Database) -> None:
    topo = Topo(pg, "release")
    svc = ClaimService(pg)
    host = topo.host(CAPACITY)
    for _ in range(5):
        claimed = svc.claim(lease(ClaimItem(host, "VCPU", CAPACITY)), now_s=NOW)
        with UnitOfWork(pg, readonly=True) as uow:
            before = uow.calendar.generation()
        done = race(8, lambda _i, u=claimed.consumer_uuid: str(svc.release(u, now_s=NOW).already_released))  # type: ignore[misc]
        assert done == Counter({"False": 1, "True": 7})
        with UnitOfWork(pg, readonly=True) as uow:
            assert uow.calendar.generation() == before + 1
    audit_clean(pg)


# -- PostgreSQL, processes ---------------------------------------------------------------------------------

_worker: dict[str, Any] = {}


def _init_worker(url: str, barrier: Any) -> None:
    db = Database(url)
    _worker.update(svc=ClaimService(db, max_attempts=10), barrier=barrier)


def _claim_in_process(args: tuple[str, int]) -> str:
    host, i = args
    _worker["barrier"].wait(timeout=60)
    return outcome(_worker["svc"], one_unit(host, i))


@pytest.mark.postgres
def test_processes_race_for_the_last_units(pg: Database) -> None:
    topo = Topo(pg, "procs")
    svc = ClaimService(pg)
    procs = 6
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(procs)
    with ctx.Pool(procs, initializer=_init_worker, initargs=(PG_URL, barrier)) as pool:
        for _ in range(4):
            host = topo.host(CAPACITY)
            book_all_but(svc, host, 2)
            got = Counter(pool.map(_claim_in_process, [(host, i) for i in range(procs)], chunksize=1))
            assert got["ok"] == 2, got
            assert got["conflict"] == procs - 2, got
            audit_clean(pg)


# -- SQLite, threads ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("trials", [8])
def test_sqlite_threads_race_for_the_last_units(tmp_path: Path, trials: int) -> None:
    db = migrated(f"sqlite:///{tmp_path}/race.db")
    try:
        topo = Topo(db, "sqlite")
        svc = ClaimService(db, max_attempts=10)
        for _ in range(trials):
            host = topo.host(CAPACITY)
            book_all_but(svc, host, 3)
            got = race(8, lambda i, h=host: outcome(svc, one_unit(h, i)))  # type: ignore[misc]
            assert got["ok"] == 3, got
            assert got["conflict"] == 5, got
            audit_clean(db)
    finally:
        db.dispose()
