"""The find-slot lane (``api/find_slot_lane.py``): searches run on at most ``threads`` threads, in the
order their requests arrived, each stamped with its arrival; the route and the fast path both use it."""

from __future__ import annotations

import functools
import threading
import time
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient

from slotbroker.api.app import create_app
from slotbroker.api.find_slot_lane import FindSlotLane
from slotbroker.config import Settings
from slotbroker.services.access.tokens import Role, TokenService
from slotbroker.store.db import Database


class Recorder:
    """Stands in for ``FindSlotService``: records the order and overlap of the calls it gets."""

    def __init__(self) -> None:
        self.order: list[int] = []
        self.arrived: list[float] = []
        self.running = 0
        self.peak = 0
        self._lock = threading.Lock()

    def answer(self, doc: dict[str, Any], *, project: str, job: bool, arrived: float) -> dict[str, Any]:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.order.append(doc["i"])
            self.arrived.append(arrived)
        assert arrived <= time.monotonic()
        time.sleep(0.005)  # long enough for every other request to be waiting
        with self._lock:
            self.running -= 1
        return doc


def run_requests(lane: FindSlotLane, n: int) -> Recorder:
    recorder = Recorder()
    services: Any = SimpleNamespace(find_slot=recorder)

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for i in range(n):  # tasks start in this order: the order the requests arrive in
                tg.start_soon(functools.partial(lane.answer, services, {"i": i}, project="p", job=False))

    anyio.run(main)
    return recorder


def test_one_thread_answers_in_arrival_order_one_at_a_time() -> None:
    seen = run_requests(FindSlotLane(1), 12)
    assert seen.peak == 1
    assert seen.order == list(range(12))
    assert seen.arrived == sorted(seen.arrived)


def test_a_wider_lane_runs_that_many_at_once_and_no_more() -> None:
    seen = run_requests(FindSlotLane(3), 12)
    assert seen.peak == 3
    assert sorted(seen.order) == list(range(12))


def test_a_lane_needs_a_thread() -> None:
    with pytest.raises(ValueError, match="at least one thread"):
        FindSlotLane(0)


def test_the_setting_sizes_the_apps_lane(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLOTBROKER_FIND_SLOT_THREADS", "2")
    settings = Settings(db.url, migrate_on_start=False, planner_workers=0, event_loop_interval_s=0)
    assert settings.find_slot_threads == 2
    assert create_app(settings, db=db).state.find_slot_lane.threads == 2


class CountingLane(FindSlotLane):
    """Counts find-slot answers and every call run in the lane (``runs``: answers included)."""

    def __init__(self) -> None:
        super().__init__(1)
        self.answers = 0
        self.runs = 0

    async def answer(self, *args: Any, **kwargs: Any) -> Any:
        self.answers += 1
        return await super().answer(*args, **kwargs)

    async def run(self, call: Any) -> Any:
        self.runs += 1
        return await super().run(call)


@pytest.mark.parametrize("fast", [True, False])
def test_the_route_and_the_fast_path_search_in_the_lane(db: Database, fast: bool) -> None:
    quiet: dict[str, Any] = {"rate_per_s": 10_000, "rate_burst": 10_000, "event_loop_interval_s": 0}
    settings = Settings(db.url, migrate_on_start=False, planner_workers=0, find_slot_fast_path=fast, **quiet)
    app = create_app(settings, db=db)
    lane = app.state.find_slot_lane = CountingLane()
    headers = {"Authorization": f"Bearer {TokenService(db).create(project='p', role=Role.ADMIN)}"}
    body = {
        "components": [{"name": "a", "resources": {"VCPU": 2}}],
        "earliest_start": "2031-01-01T00:00:00Z",
        "latest_end": "2031-01-02T00:00:00Z",
        "duration": "PT2H",
    }
    with TestClient(app) as client:
        assert client.get("/v1/me", headers=headers).status_code == 200  # the token is cached
        answered = client.post("/v1/find-slot", json=body, headers=headers)
    assert answered.status_code == 200, answered.text
    assert lane.answers == 1
    assert lane.runs == 1


def test_after_runs_on_the_lanes_thread_after_each_call_even_a_failed_one() -> None:
    seen: list[tuple[str, int]] = []
    lane = FindSlotLane(1, after=lambda: seen.append(("after", threading.get_ident())))

    def call(fail: bool) -> int:
        seen.append(("call", threading.get_ident()))
        if fail:
            raise ValueError("no")
        return 7

    async def main() -> None:
        assert await lane.run(functools.partial(call, False)) == 7
        with pytest.raises(ValueError, match="no"):
            await lane.run(functools.partial(call, True))

    anyio.run(main)
    assert [what for what, _ in seen] == ["call", "after", "call", "after"]
    assert seen[0][1] == seen[1][1] != threading.get_ident()  # the lane's thread, not the loop's
