"""The client's find-slot, job, calendar and FABRIC methods against a real server (sync and async)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from live_server import make_app, serve, token
from slotbroker.client import AsyncClient, Client, NotFoundError, ValidationError
from slotbroker.demo.bookings import synthetic_bookings
from slotbroker.demo.fabric import fabric_like_topology
from slotbroker.services.access.tokens import Role
from slotbroker.services.inventory.demo_data import load_bookings
from slotbroker.wire.fabric import FabricFindSlotRequest, FabricResource
from slotbroker.wire.find_slot import FindSlotJob, FindSlotResult

HOUR = 3600


@dataclass
class Broker:
    url: str
    admin: str
    user: str
    start: datetime  # the next whole hour


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    app = make_app(tmp_path_factory.mktemp("client-find-slot") / "f.db")
    admin = token(app, Role.ADMIN, project="demo")
    with serve(app) as url:
        doc = fabric_like_topology()
        with Client(url, admin) as api:
            api.import_topology(doc)
        now = int(time.time())
        hour = now - now % HOUR
        load_bookings(app.state.services.db, synthetic_bookings(doc, start_s=hour, days=2, seed=1), now_s=now)
        start = datetime.fromtimestamp(hour + HOUR, UTC)
        yield Broker(url, admin, token(app, Role.USER, project="science"), start)
        app.state.services.find_slot.shutdown()


@pytest.fixture
def api(broker: Broker) -> Iterator[Client]:
    with Client(broker.url, broker.admin, timeout=30) as client:
        yield client


def request(b: Broker, **changes: Any) -> dict[str, Any]:
    req: dict[str, Any] = {
        "components": [
            {"name": "gpu", "resources": {"VCPU": 8, "MEMORY_MB": 32768, "GPU_A30": 1}},
            {"name": "w", "count": 2, "resources": {"VCPU": 16}, "site": "STAR"},
        ],
        "links": [{"a": "gpu", "b": "w", "bandwidth_gbps": 10}],
        "facility_ports": [{"site": "STAR", "port": "Chameleon-StarLight", "component": "w"}],
        "earliest_start": b.start.isoformat(),
        "latest_end": (b.start + timedelta(days=1)).isoformat(),
        "duration": "PT4H",
        "limit": 3,
    }
    req.update(changes)
    return req


class PollSleeps:
    """Records each wait and sleeps briefly, so polling really waits for the job."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        time.sleep(0.02)

    async def async_sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        time.sleep(0.02)


def test_find_slot_returns_typed_windows_and_caches(api: Client, broker: Broker) -> None:
    first = api.find_slot(request(broker))
    assert isinstance(first, FindSlotResult)
    assert 1 <= len(first.windows) <= 3
    for w in first.windows:
        assert w.start >= broker.start
        assert w.sites["w"] == "STAR"
        assert w.end - w.start == timedelta(hours=4)
        assert [p.port for p in w.ports] == ["Chameleon-StarLight"]
    again = api.find_slot(request(broker))
    assert isinstance(again, FindSlotResult)
    assert again.cached
    assert again.windows == first.windows


def test_prefer_async_then_wait(broker: Broker) -> None:
    sleeps = PollSleeps()
    with Client(broker.url, broker.admin, sleep=sleeps) as api:
        sync = api.find_slot(request(broker, limit=2))
        job = api.find_slot(request(broker, limit=2), prefer_async=True)
        assert isinstance(job, FindSlotJob)
        assert job.status in ("pending", "running", "done")
        done = api.wait_find_slot(job, timeout=30)
        assert done.status == "done"
        assert done.result is not None
        assert isinstance(sync, FindSlotResult)
        # Same placements; each search mints its own allocation-request ids.
        unid = [w.model_copy(update={"allocation_request": None}) for w in sync.windows]
        assert [w.model_copy(update={"allocation_request": None}) for w in done.result.windows] == unid
        assert all(w == 1.0 for w in sleeps.waits)  # the server's Retry-After
        assert api.find_slot_job(job.id) == done
        assert api.wait_find_slot(job.id) == done  # by id, already finished: no wait


def test_jobs_of_another_project_are_not_found(api: Client, broker: Broker) -> None:
    job = api.find_slot(request(broker), prefer_async=True)
    assert isinstance(job, FindSlotJob)
    with Client(broker.url, broker.user) as other, pytest.raises(NotFoundError):
        other.find_slot_job(job.id)
    api.wait_find_slot(job)


def test_wait_is_bounded_and_honours_retry_after() -> None:
    polls: list[str] = []

    def pending(req: httpx.Request) -> httpx.Response:
        polls.append(req.url.path)
        body = {"id": "j1", "status": "running", "created_at": "2030-01-01T00:00:00Z"}
        return httpx.Response(200, json=body, headers={"Retry-After": "2"})

    waits: list[float] = []
    with (
        Client("http://sb", "t", transport=httpx.MockTransport(pending), sleep=waits.append) as api,
        pytest.raises(TimeoutError),
    ):
        api.wait_find_slot("j1", timeout=0.05)
    assert polls
    assert polls[0] == "/v1/find-slot/jobs/j1"
    assert all(0 < w <= 2 for w in waits)


def test_bad_requests_raise_validation_errors_with_pointers(api: Client, broker: Broker) -> None:
    with pytest.raises(ValidationError) as bad:
        api.find_slot(request(broker, limit=51))
    assert "/limit" in bad.value.pointers
    unknown_site = [{"name": "x", "resources": {"VCPU": 1}, "site": "NOPE"}]
    with pytest.raises(ValidationError) as bad:
        api.find_slot(request(broker, components=unknown_site, links=[], facility_ports=[]))
    assert "/components/0/site" in bad.value.pointers
    with pytest.raises(ValidationError) as bad:
        api.calendar(broker.start, broker.start - timedelta(hours=1))
    assert "#/query/end" in bad.value.pointers


def test_calendar(api: Client, broker: Broker) -> None:
    cal = api.calendar(
        broker.start,
        broker.start + timedelta(days=1),
        resolution="hour",
        kind=["host"],
        name=["star-w1", "tacc-w1"],
        resource_class=["VCPU"],
    )
    assert cal.bucket_s == HOUR
    assert len(cal.starts) == 24
    assert sorted(r.name for r in cal.rows) == ["star-w1", "tacc-w1"]
    for row in cal.rows:
        assert row.capacity == 128
        assert [u + f for u, f in zip(row.used, row.free, strict=True)] == [128] * 24
    by_day = api.calendar(broker.start.isoformat(), (broker.start + timedelta(days=2)).isoformat())
    assert len(by_day.starts) == 2
    assert {r.kind for r in by_day.rows} == {"host", "site", "link", "facility_port"}


def test_fabric_endpoints(api: Client, broker: Broker) -> None:
    req = FabricFindSlotRequest(
        start=broker.start.isoformat(),
        end=(broker.start + timedelta(days=1)).isoformat(),
        duration=2,
        max_results=2,
        resources=[
            FabricResource(type="compute", site="TACC", cores=4, ram=16, components={"GPU_RTX6000": 1}),
            FabricResource(type="link", site_a="TACC", site_b="STAR", bandwidth=5),
        ],
    )
    answer = api.fabric_find_slot(req)
    assert answer.duration_hours == 2
    assert answer.total == len(answer.windows)
    as_dict = api.fabric_find_slot(req.model_dump(exclude_none=True))
    assert as_dict.windows == answer.windows
    with pytest.raises(ValidationError) as bad:
        api.fabric_find_slot({**req.model_dump(exclude_none=True), "start": "someday"})
    assert bad.value.status == 400
    assert "/start" in bad.value.pointers
    cal = api.fabric_calendar(broker.start, broker.start + timedelta(days=2), interval="day", site=["TACC"])
    assert cal.interval == "day"
    assert len(cal.data) == 2
    assert [s.name for s in cal.data[0].sites] == ["TACC"]
    hosts = api.fabric_calendar(broker.start, broker.start + timedelta(days=1), host=["tacc-w1"])
    assert [h.name for h in hosts.data[0].hosts] == ["tacc-w1"]


@pytest.mark.anyio
async def test_async_client_find_slot_flow(broker: Broker) -> None:
    sleeps = PollSleeps()
    async with AsyncClient(broker.url, broker.admin, sleep=sleeps.async_sleep) as api:
        result = await api.find_slot(request(broker, limit=1))
        assert isinstance(result, FindSlotResult)
        assert len(result.windows) == 1
        job = await api.find_slot(request(broker, limit=1), prefer_async=True)
        assert isinstance(job, FindSlotJob)
        done = await api.wait_find_slot(job, timeout=30)
        assert done.status == "done"
        assert done.result is not None
        unid = [w.model_copy(update={"allocation_request": None}) for w in result.windows]
        assert [w.model_copy(update={"allocation_request": None}) for w in done.result.windows] == unid
        assert (await api.find_slot_job(job.id)).status == "done"
        cal = await api.calendar(broker.start, broker.start + timedelta(days=1), kind=["site"], name=["STAR"])
        assert {r.name for r in cal.rows} == {"STAR"}
        fabric = await api.fabric_find_slot(
            {
                "start": broker.start.isoformat(),
                "end": (broker.start + timedelta(days=1)).isoformat(),
                "duration": 1,
                "resources": [{"type": "compute", "cores": 2}],
            }
        )
        assert fabric.total == 1
        week = await api.fabric_calendar(broker.start, broker.start + timedelta(days=7), interval="week")
        assert len(week.data) == 1
    async with AsyncClient(broker.url, broker.user) as other:
        with pytest.raises(NotFoundError):
            await other.find_slot_job(job.id)
