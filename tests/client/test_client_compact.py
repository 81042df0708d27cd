"""The client's compaction calls (``compact_lease``, ``compact_leases``) against a real server, sync and
async: a lease moves into freed time, a stale generation raises the typed error."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI

from live_server import make_app, serve, token
from slotbroker.client import AsyncClient, Client, ConcurrentUpdateError, CreateLease, LeaseItemSpec
from slotbroker.services.access.tokens import Role

TOPOLOGY = {
    "providers": [
        {
            "name": "CS",
            "kind": "site",
            "children": [{"name": "c1", "kind": "host", "inventories": {"VCPU": 1}}],
        }
    ]
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, str, str]]:
    app = make_app(tmp_path_factory.mktemp("client-compact") / "c.db")
    user = token(app, Role.USER, project="science")
    with serve(app) as url:
        with Client(url, token(app, Role.ADMIN, project="ops")) as admin:
            admin.import_topology(TOPOLOGY)
        yield app, url, user
        app.state.services.find_slot.shutdown()


def lease(api: Client, host: str, start: datetime, hours: int, name: str) -> str:
    item = LeaseItemSpec(provider_uuid=host, resource_class="VCPU", amount=1)
    body = CreateLease(name=name, start=start, end=start + timedelta(hours=hours), items=[item])
    return api.create_lease(body).id


def test_compact_calls(server: tuple[FastAPI, str, str]) -> None:
    _, url, user = server
    now = datetime.fromtimestamp(int(time.time()), UTC)
    with Client(url, user) as api:
        host = str(next(iter(api.iter_providers(kind=["host"]))).uuid)
        blocker = lease(api, host, now + timedelta(minutes=5), 3, "blocker")
        late = api.get_lease(lease(api, host, now + timedelta(minutes=185), 1, "late"))  # right after it
        other = lease(api, host, now + timedelta(hours=5), 1, "other")
        with pytest.raises(ConcurrentUpdateError):
            api.compact_lease(late.id, generation=late.generation + 1)
        stay = api.compact_lease("late", generation=late.generation)
        assert not stay.moved
        assert stay.reason == "no_earlier_window"
        api.cancel_lease(blocker)
        moved = api.compact_lease(late.id, generation=late.generation, allow_host_swap=False)
        assert moved.moved
        assert moved.lease.start < now + timedelta(minutes=5)
        report = api.compact_leases([other])
        assert report.moved == 1
        assert report.items[0].start is not None
        assert report.items[0].start < now + timedelta(hours=5)


@pytest.mark.anyio
async def test_async_compact(server: tuple[FastAPI, str, str]) -> None:
    _, url, user = server
    async with AsyncClient(url, user) as api:
        report = await api.compact_leases(limit=5)
    assert report.moved == 0
    assert all(item.reason in ("no_earlier_window", "due_now") for item in report.items)
