"""A calendar generation read serves the find-slot requests that arrived before it began, and no other
(``services/find_slot/shared_reads.py``): requests queued in the find-slot lane share one read, and a
request never sees a calendar older than what was committed when it arrived."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from slotbroker.bootstrap import Services, build_services
from slotbroker.config import Settings
from slotbroker.domain.topology import Topology
from slotbroker.services.find_slot.shared_reads import SharedRead
from slotbroker.store import migrate
from slotbroker.store.db import Database
from slotbroker.wire.find_slot import FindSlotResult


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


def test_a_read_serves_the_arrivals_before_it_began_and_nothing_later() -> None:
    clock, values = Clock(), iter(range(100, 200))
    reads = SharedRead(lambda: next(values), clock)
    assert reads.since(None) == 100  # began at 1
    assert reads.since(0.5) == 100  # arrived before that read began: shared
    assert reads.reads == 1
    assert reads.since(1.0) == 100  # arrived as it began: shared
    assert reads.reads == 1
    assert reads.since(1.5) == 101  # arrived after: its own read (began at 2)
    assert reads.reads == 2
    assert reads.since(None) == 102  # no arrival given: always a read
    assert reads.reads == 3
    assert reads.fresh() == 103
    assert reads.reads == 4


def test_a_read_that_began_earlier_does_not_replace_a_later_one() -> None:
    """Two reads overlap: later arrivals are compared with the one that began last, whichever ended
    last."""
    calls = 0

    def read() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:  # the slow read (began at 1): another read begins at 2 and ends inside it
            assert reads.fresh() == 20
            return 7
        return 20

    reads = SharedRead(read, Clock())
    assert reads.fresh() == 7
    assert reads.since(1.5) == 20  # the read that began at 2, not the one that began at 1 and ended last
    assert reads.reads == 2


# -- in the service: two replicas on one database ----------------------------------------------------------

SITE: dict[str, Any] = {"name": "S", "kind": "site"}


def topology(hosts: int) -> Topology:
    children = [{"name": f"S-h{i}", "kind": "host", "inventories": {"VCPU": 8}} for i in range(hosts)]
    return Topology.model_validate({"providers": [{**SITE, "children": children}]})


def request(minute: int) -> dict[str, Any]:
    start = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=1, minutes=minute)
    return {
        "components": [{"name": "vm", "resources": {"VCPU": 2}}],
        "earliest_start": start.isoformat(),
        "latest_end": (start + timedelta(hours=6)).isoformat(),
        "duration": "PT1H",
    }


@pytest.fixture
def replicas(database_url: str) -> Iterator[tuple[Services, Services]]:
    dbs = Database(database_url), Database(database_url)
    migrate.upgrade(dbs[0].engine)
    settings = Settings(database_url=database_url, migrate_on_start=False, planner_workers=0)
    a, b = (build_services(settings, db) for db in dbs)
    try:
        yield a, b
    finally:
        for s in (a, b):
            s.close()
        for db in dbs:
            db.dispose()


def test_queued_requests_share_a_read_and_later_ones_see_another_replicas_commit(
    replicas: tuple[Services, Services],
) -> None:
    a, b = replicas
    b.topology.import_(topology(2))
    reads: list[str] = []

    def seen(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        if "calendar_state" in sql:
            reads.append(sql)

    a.find_slot.answer(request(0), project="p")  # builds the index
    event.listen(a.db.engine, "before_cursor_execute", seen)
    try:
        queued = time.monotonic()  # a request that arrives now and waits behind the first
        first = a.find_slot.answer(request(1), project="p", arrived=time.monotonic())
        assert isinstance(first, FindSlotResult)
        assert len(reads) == 1
        before = len(reads)
        b.topology.import_(topology(3))  # another replica commits: the generation moves
        shared = a.find_slot.answer(request(2), project="p", arrived=queued)
        assert isinstance(shared, FindSlotResult)
        assert len(reads) == before  # arrived before the first's read began: that read serves it
        assert shared.calendar_generation == first.calendar_generation
        later = a.find_slot.answer(request(3), project="p", arrived=time.monotonic())
        assert isinstance(later, FindSlotResult)
        assert len(reads) > before  # arrived after the commit: a read of its own, which sees it
        assert later.calendar_generation > first.calendar_generation
        assert later.calendar_generation == a.calendar.generation()
    finally:
        event.remove(a.db.engine, "before_cursor_execute", seen)
