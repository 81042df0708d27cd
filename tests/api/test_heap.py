"""The heap policy (``api/heap.py``): after a search that built a new calendar index, one full
collection and a freeze, so later full collections skip the index; nothing collectable is frozen, and
an index once replaced is freed by reference counting alone (it holds no cycles), so freezing leaks
nothing."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from slotbroker.api.app import create_app
from slotbroker.api.heap import HeapPolicy
from slotbroker.bootstrap import build_services
from slotbroker.config import Settings
from slotbroker.domain.topology import Topology
from slotbroker.services.access.tokens import Role, TokenService
from slotbroker.services.find_slot.calendar_cache import CalendarCache
from slotbroker.store import migrate
from slotbroker.store.db import Database

TOPOLOGY = {
    "providers": [
        {
            "name": "S1",
            "kind": "site",
            "children": [{"name": f"h{i}", "kind": "host", "inventories": {"VCPU": 8}} for i in range(3)],
        }
    ]
}
BODY = {
    "components": [{"name": "a", "resources": {"VCPU": 2}}],
    "earliest_start": "2031-01-01T00:00:00Z",
    "latest_end": "2031-01-02T00:00:00Z",
    "duration": "PT2H",
}


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()  # whatever an earlier test left
    yield
    gc.unfreeze()


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_a_new_build_collects_then_freezes_once(unfrozen: None) -> None:
    builds = 0
    policy = HeapPolicy(lambda: builds)
    policy.start()
    try:
        garbage = weakref.ref(Cycle())  # collectable only by a collection
        policy.after_search()
        assert garbage() is None  # collected, not frozen
        frozen = gc.get_freeze_count()
        assert policy.freezes == 1
        assert frozen > 0
        policy.after_search()  # no new build: nothing
        assert policy.freezes == 1
        builds += 1
        policy.after_search()
        assert policy.freezes == 2
    finally:
        policy.stop()


def test_garbage_frozen_by_one_freeze_is_collected_at_the_next(unfrozen: None) -> None:
    """A cycle alive at a freeze (an in-flight request's, say) that dies afterwards is not kept for
    good: the next build's freeze unfreezes before it collects."""
    builds = 0
    policy = HeapPolicy(lambda: builds)
    policy.start()
    try:
        alive = Cycle()
        policy.after_search()
        assert gc.is_tracked(alive)
        dead = weakref.ref(alive)
        del alive  # now garbage, but frozen: no collection reaches it
        gc.collect()
        assert dead() is not None
        builds += 1
        policy.after_search()
        assert dead() is None
    finally:
        policy.stop()


def test_off_or_not_serving_it_does_nothing(unfrozen: None) -> None:
    off = HeapPolicy(lambda: 1, freeze=False)
    off.start()
    off.after_search()
    off.stop()
    idle = HeapPolicy(lambda: 1)  # not started: a test app without its lifespan
    idle.after_search()
    assert off.freezes == idle.freezes == 0
    assert gc.get_freeze_count() == 0


def test_thresholds_while_serving_then_the_old_ones() -> None:
    before = gc.get_threshold()
    policy = HeapPolicy(lambda: 0, threshold=(5000, 20, 30))
    policy.start()
    assert gc.get_threshold() == (5000, 20, 30)
    policy.stop()
    assert gc.get_threshold() == before


def test_the_threshold_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLOTBROKER_GC_THRESHOLD", "1000,10,20")
    assert Settings().gc_threshold == (1000, 10, 20)
    monkeypatch.setenv("SLOTBROKER_GC_THRESHOLD", "")
    assert Settings().gc_threshold is None
    monkeypatch.setenv("SLOTBROKER_GC_THRESHOLD", "0,1,1")
    with pytest.raises(ValueError, match="three integers"):
        Settings()
    monkeypatch.setenv("SLOTBROKER_GC_FREEZE", "0")
    monkeypatch.delenv("SLOTBROKER_GC_THRESHOLD")
    assert Settings().gc_freeze is False


def test_a_replaced_index_is_freed_without_a_collection(db: Database, unfrozen: None) -> None:
    """What makes freezing after each build leak-free: the index a rebuild replaces holds no cycles."""
    migrate.upgrade(db.engine)
    svc = build_services(Settings(db.url, migrate_on_start=False, planner_workers=0), db)
    svc.topology.import_(Topology.model_validate(TOPOLOGY))
    cache: CalendarCache = svc.find_slot.calendar
    first = cache.current()
    entry, index = weakref.ref(first), weakref.ref(first.index)
    del first
    gc.freeze()  # as the policy would after this build
    gc.disable()
    try:
        cache.invalidate()
        assert cache.current().index is not index()
        assert entry() is None  # reference counting alone freed them
        assert index() is None
    finally:
        gc.enable()
        svc.close()


def test_the_apps_first_search_freezes_its_index_and_later_ones_do_not(db: Database, unfrozen: None) -> None:
    quiet: dict[str, Any] = {"rate_per_s": 10_000, "rate_burst": 10_000, "event_loop_interval_s": 0}
    app = create_app(Settings(db.url, migrate_on_start=True, planner_workers=0, **quiet), db=db)
    app.state.services.topology.import_(Topology.model_validate(TOPOLOGY))
    headers = {"Authorization": f"Bearer {TokenService(db).create(project='p', role=Role.ADMIN)}"}
    with TestClient(app) as client:
        for _ in range(3):
            answered = client.post("/v1/find-slot", json=BODY, headers=headers)
            assert answered.status_code == 200, answered.text
        assert app.state.heap.freezes == 1
        cached = app.state.services.find_slot.calendar._cached
        assert cached is not None
        collectable = {id(o) for g in range(3) for o in gc.get_objects(generation=g)}
        assert gc.is_tracked(cached)
        assert id(cached) not in collectable  # frozen: no later collection walks the index
        assert gc.get_freeze_count() > 0
        assert app.state.services.find_slot.calendar.rebuilds == 1
    assert gc.get_freeze_count() == 0  # shutdown unfreezes all
