"""Through HTTP on both backends: what the store holds or a valid request asks never answers 500.

A booking stored before the edges refused far-future times (end in year 2600, or 0001 to 9999) must
still hold its host in find-slot; FABRIC requests that are only links or facility ports are answered."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from slotbroker.domain.inventory import Inventory
from slotbroker.domain.providers import ProviderKind
from slotbroker.services.inventory.network import NetworkService
from slotbroker.services.inventory.service import InventoryService
from slotbroker.store.db import Database
from slotbroker.store.models import AllocationRow, ConsumerRow, ProviderRow
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire import providers as cmd

HOUR = 3600
YEAR_1 = -62_135_596_800
YEAR_2600 = int(datetime(2600, 1, 1, tzinfo=UTC).timestamp())
YEAR_9999_END = 253_402_300_799


def iso(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


@pytest.fixture
def testbed(db: Database) -> dict[str, str]:
    """Sites A (hosts a1, a2) and B (host b1), a link A-B and a facility port at B."""
    inv = InventoryService(db)
    uuids = {}
    for site in ("A", "B"):
        uuids[site] = inv.create_provider(cmd.CreateProvider(name=site, kind=ProviderKind.SITE)).uuid
    for host, site in (("a1", "A"), ("a2", "A"), ("b1", "B")):
        body = cmd.CreateProvider(
            name=host,
            kind=ProviderKind.HOST,
            parent_uuid=uuids[site],  # pydantic parses the str
            inventories={"VCPU": Inventory(total=8)},
        )
        uuids[host] = inv.create_provider(body).uuid
    net = NetworkService(db)
    net.create_link(cmd.CreateLink(name="AB", endpoints=("A", "B"), bandwidth_gbps=100))
    net.create_port(cmd.CreateFacilityPort(name="fp", site="B", vlans="100-109", bandwidth_gbps=100))
    return uuids


def store_lease_row(db: Database, host: str, amount: int, start: int, end: int) -> None:
    """Write a lease and its allocation straight into the tables, as an older version may have."""
    with UnitOfWork(db) as uow:
        s = uow.session
        pid = s.query(ProviderRow.id).filter(ProviderRow.name == host).scalar()
        consumer = ConsumerRow(
            uuid=str(uuid.uuid4()), kind="lease", project="old", status="ACTIVE", start_s=start, end_s=end
        )
        s.add(consumer)
        s.flush()
        s.add(
            AllocationRow(
                consumer_id=consumer.id,
                provider_id=pid,
                resource_class="VCPU",
                amount=amount,
                start_s=start,
                end_s=end,
            )
        )
        uow.calendar.bump()
        uow.commit()


def find_slot(client: TestClient, headers: dict[str, str], **doc: Any) -> Any:
    start = (int(time.time()) // HOUR + 1) * HOUR
    body = {"earliest_start": iso(start), "latest_end": iso(start + 12 * HOUR), "duration": "PT2H", **doc}
    return client.post("/v1/find-slot", json=body, headers=headers)


@pytest.mark.parametrize("span", [(None, YEAR_2600), (YEAR_1, YEAR_9999_END)], ids=["to-2600", "1-to-9999"])
def test_a_stored_booking_far_past_any_request_holds_its_host(
    db: Database,
    client: TestClient,
    user: dict[str, str],
    testbed: dict[str, str],
    span: tuple[int | None, int],
) -> None:
    start, end = span
    store_lease_row(db, "a1", 8, int(time.time()) - HOUR if start is None else start, end)
    r = find_slot(client, user, components=[{"name": "vm", "site": "A", "resources": {"VCPU": 2}}], limit=3)
    assert r.status_code == 200, r.text
    windows = r.json()["windows"]
    assert windows
    assert {h for w in windows for h in w["placement"]["vm"]} == {"a2"}  # a1 is held throughout
    whole = find_slot(client, user, components=[{"name": "vm", "host": "a1", "resources": {"VCPU": 1}}])
    assert whole.status_code == 200, whole.text
    assert whole.json()["windows"] == []


def test_a_component_with_no_resources_pinned_to_a_site_is_answered(
    client: TestClient, user: dict[str, str], testbed: dict[str, str]
) -> None:
    r = find_slot(client, user, components=[{"name": "anchor", "site": "B", "resources": {}}])
    assert r.status_code == 200, r.text
    assert r.json()["windows"][0]["placement"] == {"anchor": ["b1"]}


@pytest.mark.parametrize(
    "resources",
    [
        [{"type": "link", "site_a": "A", "site_b": "B", "bandwidth": 10}],
        [{"type": "facility_port", "name": "fp", "vlans": 2}],
        [
            {"type": "link", "site_a": "A", "site_b": "B", "bandwidth": 10},
            {"type": "facility_port", "name": "fp", "site": "B", "vlans": 1, "bandwidth": 5},
        ],
    ],
    ids=["link-only", "port-only", "link-and-port"],
)
def test_fabric_find_slot_with_only_links_or_ports_answers(
    client: TestClient, user: dict[str, str], testbed: dict[str, str], resources: list[dict[str, Any]]
) -> None:
    start = (int(time.time()) // HOUR + 1) * HOUR
    body = {"start": iso(start), "end": iso(start + 24 * HOUR), "duration": 2, "resources": resources}
    r = client.post("/calendar/find-slot", json=body, headers=user)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["total"] == 1
    assert got["windows"][0]["placement"] == {}  # only anchors were placed, and they are not shown


def test_requests_at_the_end_of_time_are_refused_at_the_edge_and_stored_rows_do_not_matter(
    db: Database, client: TestClient, user: dict[str, str], testbed: dict[str, str]
) -> None:
    """A booking stored up to year 10000 does not break find-slot, and a request reaching past the
    supported times (domain/limits.py) is a 422 naming its field, never a 500 writing year 10000; the
    engine's own end-of-time handling is covered in tests/engine/test_never_raises.py."""
    store_lease_row(db, "a1", 8, int(time.time()) - HOUR, YEAR_9999_END + 86400)  # frees a1 in year 10000
    held = [{"name": "vm", "host": "a1", "resources": {"VCPU": 1}}]
    body = {
        "earliest_start": "9999-12-01T00:00:00Z",
        "latest_end": "9999-12-31T00:00:00Z",
        "duration": "PT1H",
    }
    r = client.post("/v1/find-slot", json={**body, "components": held}, headers=user)
    assert r.status_code == 422, r.text
    assert [e["pointer"] for e in r.json()["errors"]] == ["/latest_end"]
    free = [{"name": "vm", "host": "a2", "resources": {"VCPU": 1}}]
    late = {"start_within": "9999-12-31T18:00:00Z/9999-12-31T21:00:00Z", "duration": "PT2H", "limit": 5}
    r = client.post("/v1/find-slot", json={**late, "components": free}, headers=user)
    assert r.status_code == 422, r.text
    assert [e["pointer"] for e in r.json()["errors"]] == ["/start_within"]
    soon = {"earliest_start": _iso(time.time() + HOUR), "latest_end": _iso(time.time() + 3 * HOUR)}
    r = client.post("/v1/find-slot", json={**soon, "duration": "PT1H", "components": held}, headers=user)
    assert r.status_code == 200, r.text
    assert r.json()["windows"] == []  # a1 is held until year 10000


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(int(epoch_s), UTC).isoformat()
