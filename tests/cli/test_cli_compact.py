"""``slotbroker compact`` and ``slotbroker lease compact`` against a live server with one one-core host."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from live_server import make_app, serve, token
from slotbroker.cli.main import app
from slotbroker.client import Client, CreateLease, LeaseItemSpec
from slotbroker.services.access.tokens import Role

runner = CliRunner()
HOST = {"name": "k1", "kind": "host", "inventories": {"VCPU": 1}}
TOPOLOGY = {"providers": [{"name": "KS", "kind": "site", "children": [HOST]}]}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    broker = make_app(tmp_path_factory.mktemp("cli-compact") / "k.db")
    with serve(broker) as url:
        with Client(url, token(broker, Role.ADMIN, project="ops")) as admin:
            admin.import_topology(TOPOLOGY)
        yield url, token(broker, Role.USER, project="science")
        broker.state.services.find_slot.shutdown()


def invoke(server: tuple[str, str], *args: str) -> Any:
    url, user = server
    return runner.invoke(app, [*args, "--url", url, "--token", user], catch_exceptions=False)


def test_compact_commands(server: tuple[str, str]) -> None:
    url, user = server
    now = datetime.fromtimestamp(int(time.time()), UTC)
    with Client(url, user) as api:
        host = str(next(iter(api.iter_providers(kind=["host"]))).uuid)

        def book(name: str, start: datetime, hours: int) -> str:
            item = LeaseItemSpec(provider_uuid=host, resource_class="VCPU", amount=1)
            end = start + timedelta(hours=hours)
            return api.create_lease(CreateLease(name=name, start=start, end=end, items=[item])).id

        blocker = book("blocker", now + timedelta(minutes=5), 2)
        first = book("first", now + timedelta(minutes=125), 1)
        book("second", now + timedelta(minutes=185), 1)
        stays = invoke(server, "lease", "compact", "first")
        assert stays.exit_code == 0, stays.output
        assert "no_earlier_window" in stays.output
        api.cancel_lease(blocker)
    moved = invoke(server, "lease", "compact", first, "--keep-hosts", "-o", "json")
    assert moved.exit_code == 0, moved.output
    assert json.loads(moved.stdout)["start"] < (now + timedelta(minutes=5)).isoformat()
    table = invoke(server, "compact")
    assert table.exit_code == 0, table.output
    assert "1 of 2 lease(s) moved earlier" in table.output  # "first" starts now: due_now
    bad = invoke(server, "compact", "--policy", "fastest")
    assert bad.exit_code == 2
