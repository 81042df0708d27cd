"""The client's booking methods (offers, leases, quotas, claims, allocation candidates) against a real
server on a SQLite file, sync and async, and how booking problem codes map to typed exceptions."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI

from live_server import make_app, serve, token
from slotbroker.client import (
    AcceptedLease,
    AllocationRequestClaimedError,
    AsyncClient,
    CapacityConflictError,
    Client,
    ConcurrentUpdateError,
    ConflictError,
    CreateLease,
    InvalidStateError,
    LeaseItemSpec,
    LeaseTooLongError,
    NotFoundError,
    OfferExpiredError,
    OfferNotOpenError,
    OfferSetRequest,
    OfferSetStatus,
    OfferState,
    PermissionDeniedError,
    QuotaExceededError,
    SetQuota,
    Strategy,
    UpdateLease,
)
from slotbroker.client.errors import (
    AllocationRequestExpiredError,
    GoneError,
    OutsideExtensionWindowError,
    error_class,
)
from slotbroker.services.tokens import Role

HOUR = 3600
TOPOLOGY: dict[str, Any] = {
    "providers": [
        {
            "name": "S1",
            "kind": "site",
            "children": [
                {"name": "h1", "kind": "host", "inventories": {"VCPU": 8, "MEMORY_MB": 16384, "GPU_A30": 1}},
                {"name": "h2", "kind": "host", "inventories": {"VCPU": 8, "MEMORY_MB": 16384}},
            ],
        }
    ]
}


@dataclass
class Broker:
    app: FastAPI
    url: str
    admin: str
    user: str  # project "science"
    hosts: dict[str, str]  # name -> uuid
    start: datetime  # a whole hour, two hours ahead
    used: int = 0

    def slot(self) -> datetime:
        """Six hours of their own for each test, so tests never see each other's bookings (and all stay
        within the lease extension window)."""
        self.used += 1
        return self.start + timedelta(hours=6 * self.used)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    app = make_app(tmp_path_factory.mktemp("client-booking") / "b.db")
    admin = token(app, Role.ADMIN, project="ops")
    with serve(app) as url:
        with Client(url, admin) as api:
            api.import_topology(TOPOLOGY)
            hosts = {p.name: str(p.uuid) for p in api.iter_providers(kind=["host"])}
        now = int(time.time())
        start = datetime.fromtimestamp(now - now % HOUR + 2 * HOUR, UTC)
        yield Broker(app, url, admin, token(app, Role.USER, project="science"), hosts, start)
        app.state.services.find_slot.shutdown()


@pytest.fixture
def api(broker: Broker) -> Iterator[Client]:
    with Client(broker.url, broker.admin, timeout=30) as client:
        yield client


@pytest.fixture
def user_api(broker: Broker) -> Iterator[Client]:
    with Client(broker.url, broker.user, timeout=30) as client:
        yield client


def gpu_request(start: datetime, hours: int = 4) -> dict[str, Any]:
    return {
        "components": [{"name": "gpu", "host": "h1", "resources": {"GPU_A30": 1, "VCPU": 2}}],
        "earliest_start": start.isoformat(),
        "latest_end": (start + timedelta(days=1)).isoformat(),
        "duration": f"PT{hours}H",
    }


def test_offer_accept_update_cancel(broker: Broker, api: Client) -> None:
    start = broker.slot()
    view = api.create_offer_set(OfferSetRequest(request=gpu_request(start), max_offers=2))
    assert view.status == OfferSetStatus.OPEN
    assert len(view.offers) == 2
    first, second = view.offers
    assert first.start == start  # the only GPU is free from the start
    assert api.get_offer_set(view.id).id == view.id
    assert api.get_offer(first.id).state == OfferState.OFFERED

    lease = api.accept_offer(first.id)
    assert isinstance(lease, AcceptedLease)
    assert lease.offer_id == first.id
    assert lease.status == "PENDING"
    assert api.get_offer(second.id).state == OfferState.REJECTED  # siblings rejected
    with pytest.raises(OfferNotOpenError) as refused:
        api.accept_offer(first.id)
    assert isinstance(refused.value, ConflictError)
    assert refused.value.status == 409

    read = api.get_lease(lease.uuid)
    assert read.end == lease.end
    longer = api.update_lease(
        lease.uuid, UpdateLease(generation=read.generation, end=read.end + timedelta(hours=1))
    )
    assert longer.end == read.end + timedelta(hours=1)
    assert longer.generation > read.generation
    with pytest.raises(ConcurrentUpdateError):  # the generation read before the change is stale now
        api.update_lease(lease.uuid, {"generation": read.generation, "end": read.end.isoformat()})

    cancelled = api.cancel_lease(lease.uuid)
    assert cancelled.status == "CANCELLED"
    assert api.cancel_lease(lease.uuid).status == "CANCELLED"  # idempotent
    with pytest.raises(InvalidStateError):
        api.update_lease(lease.uuid, UpdateLease(generation=cancelled.generation, end=cancelled.end))
    with pytest.raises(NotFoundError):
        api.get_lease("00000000-0000-0000-0000-000000000000")


def test_offer_expired_and_reject(broker: Broker, api: Client) -> None:
    start = broker.slot()
    view = api.create_offer_set(
        OfferSetRequest(request=gpu_request(start), strategies=[Strategy.EARLIEST], max_offers=2)
    )
    assert {o.strategy for o in view.offers} == {Strategy.EARLIEST}
    rejected = api.reject_offer(view.offers[1].id)
    assert rejected.state == OfferState.REJECTED
    offers = broker.app.state.services.offers
    real_clock = offers.clock
    offers.clock = lambda: real_clock() + 3 * 86_400  # the server (in this process) lives past the TTL
    try:
        with pytest.raises(OfferExpiredError) as expired:
            api.accept_offer(view.offers[0].id)
    finally:
        offers.clock = real_clock
    assert expired.value.code == "offer_expired"
    assert isinstance(expired.value, ConflictError)


def test_leases_paging_ics_and_policies(broker: Broker, api: Client, user_api: Client) -> None:
    start = broker.slot()
    h2 = broker.hosts["h2"]
    made = [
        user_api.create_lease(
            CreateLease(
                name=f"batch-{i}",
                start=start + timedelta(hours=i),
                end=start + timedelta(hours=i + 1),
                items=[LeaseItemSpec(provider_uuid=h2, resource_class="VCPU", amount=1)],
            )
        )
        for i in range(3)
    ]
    assert all(m.project == "science" for m in made)
    page = user_api.list_leases(limit=2)
    assert len(page.items) == 2
    ids = [x.id for x in page.items]
    while page.next_cursor is not None:
        page = user_api.list_leases(limit=2, cursor=page.next_cursor)
        ids += [x.id for x in page.items]
    assert {m.id for m in made} <= set(ids)
    assert [x.id for x in user_api.iter_leases(page_size=1)] == ids
    window = [x.id for x in api.iter_leases(project="science", start=start, end=start + timedelta(hours=2))]
    assert window == [made[1].id, made[0].id]  # newest first
    assert [x.id for x in api.iter_leases(status=["CANCELLED"], project="science")] == []

    ics = user_api.leases_ics()
    assert ics.startswith("BEGIN:VCALENDAR\r\n")
    assert f"UID:{made[0].id}@slotbroker" in ics

    with pytest.raises(LeaseTooLongError) as too_long:
        user_api.create_lease(
            {
                "start": start.isoformat(),
                "end": (start + timedelta(days=31)).isoformat(),
                "items": [{"provider_uuid": h2, "resource_class": "VCPU", "amount": 1}],
            }
        )
    assert isinstance(too_long.value, PermissionDeniedError)
    later = api.create_lease(
        CreateLease(
            start=start + timedelta(days=5),
            end=start + timedelta(days=6),
            items=[LeaseItemSpec(provider_uuid=h2, resource_class="VCPU", amount=1)],
        )
    )
    extend = UpdateLease(generation=later.generation, end=later.end + timedelta(hours=1))
    with pytest.raises(OutsideExtensionWindowError):  # far from its end: not extendable yet
        api.update_lease(later.id, extend)
    api.delete_lease(later.id)
    for m in made:
        api.delete_lease(m.id)
    assert {x.status for x in user_api.iter_leases()} == {"CANCELLED"}


def test_quotas(broker: Broker, api: Client, user_api: Client) -> None:
    start = broker.slot()
    quota = api.put_quota("science", "VCPU", SetQuota(max_concurrent=4))
    assert (quota.project, quota.resource_class, quota.max_concurrent) == ("science", "VCPU", 4)
    assert api.get_quota("science", "VCPU") == quota
    assert api.list_quotas("science") == [quota]
    try:
        with pytest.raises(QuotaExceededError) as over:
            user_api.create_lease(
                CreateLease(
                    start=start,
                    end=start + timedelta(hours=1),
                    items=[LeaseItemSpec(provider_uuid=broker.hosts["h2"], resource_class="VCPU", amount=5)],
                )
            )
        assert isinstance(over.value, PermissionDeniedError)
        with pytest.raises(PermissionDeniedError) as not_admin:
            user_api.put_quota("science", "VCPU", {"max_concurrent": 100})
        assert not isinstance(not_admin.value, QuotaExceededError)
    finally:
        api.delete_quota("science", "VCPU")
    with pytest.raises(NotFoundError):
        api.get_quota("science", "VCPU")


def test_claims_and_candidates(broker: Broker, api: Client, user_api: Client) -> None:
    start = broker.slot()
    end = start + timedelta(hours=2)
    h1 = broker.hosts["h1"]
    claimed = user_api.claim(
        items=[LeaseItemSpec(provider_uuid=h1, resource_class="GPU_A30", amount=1)], start=start, end=end
    )
    assert claimed.project == "science"
    assert [(a.provider_uuid, a.resource_class, a.amount) for a in claimed.allocations] == [
        (h1, "GPU_A30", 1)
    ]
    with pytest.raises(CapacityConflictError):
        api.claim(
            items=[{"provider_uuid": h1, "resource_class": "GPU_A30", "amount": 1}], start=start, end=end
        )

    cands = user_api.allocation_candidates(resources={"GPU_A30": 1}, start=start, end=end)
    assert cands.allocation_requests == []  # the only GPU is claimed over that interval
    user_api.release_claim(claimed.uuid)
    user_api.release_claim(claimed.uuid)  # idempotent

    cands = user_api.allocation_candidates(resources="GPU_A30:1,VCPU:1", start=start, end=end, limit=5)
    assert [list(r.allocations) for r in cands.allocation_requests] == [[h1]]
    assert cands.provider_summaries[h1].resources["GPU_A30"].capacity == 1
    ar = cands.allocation_requests[0].id
    by_id = user_api.claim(ar, kind="hold", name="try")
    assert by_id.allocation_request == ar
    assert by_id.kind == "hold"
    with pytest.raises(AllocationRequestClaimedError):
        user_api.claim(ar)
    user_api.release_claim(by_id.uuid)
    with pytest.raises(NotFoundError):
        api.release_claim("no-such-claim")


def test_problem_codes_map_to_typed_errors() -> None:
    assert error_class(409, "offer_expired") is OfferExpiredError
    assert error_class(409, "offer_not_open") is OfferNotOpenError
    assert error_class(403, "quota_exceeded") is QuotaExceededError
    assert error_class(403, "lease_too_long") is LeaseTooLongError
    assert error_class(409, "invalid_state") is InvalidStateError
    assert error_class(410, "allocation_request_expired") is AllocationRequestExpiredError
    assert issubclass(AllocationRequestExpiredError, GoneError)
    assert error_class(410, "something_else") is GoneError
    # a code only refines within its status family
    assert error_class(400, "quota_exceeded").__name__ == "ValidationError"


@pytest.mark.anyio
async def test_async_client_booking(broker: Broker) -> None:
    start = broker.slot()
    async with AsyncClient(broker.url, broker.user, timeout=30) as api:
        view = await api.create_offer_set({"request": gpu_request(start, hours=2), "max_offers": 1})
        assert view.project == "science"
        (offer,) = view.offers
        assert (await api.get_offer(offer.id)).id == offer.id
        lease = await api.accept_offer(offer.id)
        with pytest.raises(OfferNotOpenError):
            await api.reject_offer(offer.id)
        got = await api.get_lease(lease.uuid)
        shorter = await api.update_lease(
            lease.uuid, UpdateLease(generation=got.generation, end=got.end - timedelta(hours=1))
        )
        assert shorter.end == got.end - timedelta(hours=1)
        seen = [x.id async for x in api.iter_leases(page_size=1)]
        assert lease.uuid in seen
        page = await api.list_leases(status=["PENDING"])
        assert lease.uuid in [x.id for x in page.items]
        assert lease.uuid in await api.leases_ics(status=["PENDING"])
        assert (await api.cancel_lease(lease.uuid)).status == "CANCELLED"

        claimed = await api.claim(
            items=[LeaseItemSpec(provider_uuid=broker.hosts["h2"], resource_class="VCPU", amount=8)],
            start=start,
            end=start + timedelta(hours=1),
        )
        with pytest.raises(CapacityConflictError):
            await api.claim(
                items=[{"provider_uuid": broker.hosts["h2"], "resource_class": "VCPU", "amount": 1}],
                start=start,
                end=start + timedelta(hours=1),
            )
        cands = await api.allocation_candidates(
            resources={"VCPU": 1}, start=start, end=start + timedelta(hours=1)
        )
        assert [list(r.allocations) for r in cands.allocation_requests] == [[broker.hosts["h1"]]]
        await api.release_claim(claimed.uuid)
        with pytest.raises(PermissionDeniedError):
            await api.get_quota("science", "VCPU")
