"""slotbroker.client against the real API served by uvicorn (and in-process over ASGI), plus its retry
rules against small fake servers standing in for a misbehaving network."""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from live_server import free_port, make_app, serve, token
from slotbroker.client import (
    AsyncClient,
    AuthenticationError,
    CapacityConflictError,
    Client,
    ConcurrentUpdateError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RetryPolicy,
    SlotbrokerAPIError,
    UnavailableError,
    ValidationError,
    parse_retry_after,
)
from slotbroker.domain.inventory import Inventory
from slotbroker.domain.providers import Location, ProviderKind
from slotbroker.services.access.tokens import Role
from slotbroker.wire import providers as cmd

# -- a real server (tests/live_server.py) ---------------------------------------------------------------


@dataclass
class Server:
    url: str
    app: FastAPI
    admin: str
    user: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    app = make_app(tmp_path_factory.mktemp("client") / "c.db")
    with serve(app) as url:
        yield Server(url, app, token(app, Role.ADMIN), token(app, Role.USER))


@dataclass
class Sleeps:
    """An injected ``sleep`` that records instead of waiting."""

    waits: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def api(server: Server) -> Iterator[Client]:
    with Client(server.url, server.admin, timeout=10) as client:
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}-{uuidlib.uuid4().hex[:8]}"


def site_and_host(api: Client) -> tuple[str, str]:
    site = api.create_provider(
        cmd.CreateProvider(name=unique("site"), kind=ProviderKind.SITE, location=Location(lat=50.1, lon=14.4))
    )
    host = api.create_provider(
        cmd.CreateProvider(
            name=unique("host"),
            kind=ProviderKind.HOST,
            parent_uuid=uuidlib.UUID(site.uuid),
            inventories={"VCPU": Inventory(total=64), "MEMORY_MB": Inventory(total=262144, reserved=4096)},
        )
    )
    return site.uuid, host.uuid


# -- the real API ----------------------------------------------------------------------------------------


def test_health_ready_and_metrics(api: Client) -> None:
    assert api.healthz().status == "ok"
    ready = api.readyz()
    assert ready.status == "ok"
    assert ready.database == "sqlite"
    assert ready.migration is not None
    assert "# TYPE" in api.metrics()


def test_provider_and_inventory_lifecycle(api: Client) -> None:
    site_uuid, host_uuid = site_and_host(api)
    site = api.get_provider(site_uuid)
    assert site.kind == ProviderKind.SITE
    assert site.location == Location(lat=50.1, lon=14.4)
    host = api.get_provider(host_uuid)
    assert host.parent_uuid == site_uuid
    assert host.inventories["VCPU"].capacity == 64
    assert host.inventories["MEMORY_MB"].capacity == 262144 - 4096

    unlocated = api.update_provider(site_uuid, cmd.UpdateProvider(generation=site.generation, location=None))
    assert unlocated.location is None  # an explicitly set None is sent; unset fields are not
    assert api.update_provider(site_uuid, {"generation": unlocated.generation}).name == site.name

    renamed = api.update_provider(host_uuid, cmd.UpdateProvider(generation=host.generation, name=unique("h")))
    assert renamed.name != host.name

    inv = api.get_inventories(host_uuid)
    assert inv.generation == renamed.generation
    assert set(inv.inventories) == {"VCPU", "MEMORY_MB"}
    replaced = api.set_inventories(
        host_uuid,
        cmd.SetInventories(
            generation=inv.generation,
            inventories={"VCPU": Inventory(total=32, allocation_ratio=4.0), "DISK_GB": Inventory(total=1000)},
        ),
    )
    assert replaced.generation == inv.generation + 1
    assert replaced.inventories["VCPU"].capacity == 128
    assert set(replaced.inventories) == {"VCPU", "DISK_GB"}

    with pytest.raises(ConcurrentUpdateError) as stale:
        api.set_inventories(host_uuid, {"generation": inv.generation, "inventories": {"VCPU": 8}})
    assert stale.value.status == 409
    assert stale.value.code == "concurrent_update"
    assert "/generation" in stale.value.pointers
    assert isinstance(stale.value, ConflictError)

    one = api.set_inventory(
        host_uuid, "MEMORY_MB", cmd.SetInventory(generation=replaced.generation, total=512)
    )
    assert one.inventories["MEMORY_MB"].total == 512
    assert one.generation == replaced.generation + 1
    dropped = api.delete_inventory(host_uuid, "DISK_GB", generation=one.generation)
    assert "DISK_GB" not in dropped.inventories
    with pytest.raises(NotFoundError):
        api.delete_inventory(host_uuid, "DISK_GB", generation=dropped.generation)

    api.put_trait("CUSTOM_CLIENT_TEST")
    traits = api.set_provider_traits(
        host_uuid, cmd.SetNames(generation=dropped.generation, names=["CUSTOM_CLIENT_TEST"])
    )
    assert traits.names == ["CUSTOM_CLIENT_TEST"]
    assert api.get_provider_traits(host_uuid).names == ["CUSTOM_CLIENT_TEST"]
    aggs = api.set_provider_aggregates(host_uuid, cmd.SetNames(generation=traits.generation, names=["agg-1"]))
    assert aggs.names == ["agg-1"]
    assert api.get_provider_aggregates(host_uuid).names == ["agg-1"]
    assert {"name": "agg-1", "members": 1} in [a.model_dump() for a in api.list_aggregates()]
    hits = api.list_providers(trait=["CUSTOM_CLIENT_TEST"], member_of=["agg-1"], kind=[ProviderKind.HOST])
    assert [p.uuid for p in hits.items] == [host_uuid]
    assert api.list_providers(name=renamed.name).items[0].uuid == host_uuid

    api.delete_provider(host_uuid)
    with pytest.raises(NotFoundError) as gone:
        api.get_provider(host_uuid)
    assert gone.value.code == "not_found"
    assert gone.value.status == 404


def test_bad_input_names_the_field(api: Client) -> None:
    with pytest.raises(ValidationError) as bad:
        api.create_provider({"name": "no spaces allowed", "kind": "host"})
    assert bad.value.status == 422
    assert bad.value.code == "validation_error"
    assert "/name" in bad.value.pointers

    with pytest.raises(ValidationError) as bad_query:
        api.list_providers(limit=0)
    assert "#/query/limit" in bad_query.value.pointers

    with pytest.raises(ValidationError) as extra:
        api.create_resource_class({"name": "CUSTOM_X", "colour": "red"})
    assert "/colour" in extra.value.pointers


def test_authentication_and_roles(server: Server) -> None:
    with Client(server.url) as anonymous, pytest.raises(AuthenticationError) as missing:
        anonymous.list_providers()
    assert missing.value.status == 401
    with Client(server.url, "sb_not-a-real-token") as forged, pytest.raises(AuthenticationError):
        forged.list_links()
    with Client(server.url, server.user) as user:
        assert isinstance(user.list_providers().items, list)
        with pytest.raises(PermissionDeniedError) as denied:
            user.create_provider(cmd.CreateProvider(name=unique("s"), kind=ProviderKind.SITE))
        assert denied.value.status == 403
        assert denied.value.code == "forbidden"


def test_resource_classes_and_traits(api: Client) -> None:
    created = api.create_resource_class(cmd.CreateResourceClass(name="CUSTOM_FPGA_X", description="FPGAs"))
    assert (created.name, created.kind, created.description) == ("CUSTOM_FPGA_X", "custom", "FPGAs")
    assert api.get_resource_class("CUSTOM_FPGA_X") == created
    names = {rc.name for rc in api.list_resource_classes()}
    assert {"VCPU", "CUSTOM_FPGA_X"} <= names
    with pytest.raises(ConflictError) as twice:
        api.create_resource_class(cmd.CreateResourceClass(name="CUSTOM_FPGA_X"))
    assert twice.value.code == "already_exists"
    api.delete_resource_class("CUSTOM_FPGA_X")
    with pytest.raises(NotFoundError):
        api.get_resource_class("CUSTOM_FPGA_X")

    trait = api.put_trait("CUSTOM_FAST_NIC")
    assert trait.custom
    assert api.put_trait("CUSTOM_FAST_NIC") == trait  # idempotent
    assert api.get_trait("CUSTOM_FAST_NIC") == trait
    customs = api.list_traits(custom=True)
    assert trait in customs
    assert all(t.custom for t in customs)
    assert len(api.list_traits()) > len(customs)
    api.delete_trait("CUSTOM_FAST_NIC")
    with pytest.raises(NotFoundError):
        api.get_trait("CUSTOM_FAST_NIC")


def test_links_and_facility_ports(api: Client) -> None:
    a = api.create_provider(cmd.CreateProvider(name=unique("sa"), kind=ProviderKind.SITE))
    b = api.create_provider(cmd.CreateProvider(name=unique("sb"), kind=ProviderKind.SITE))

    link = api.create_link(cmd.CreateLink(name=unique("l"), endpoints=(a.name, b.name), bandwidth_gbps=100))
    assert link.endpoints == (a.name, b.name)
    assert link.bandwidth_gbps == 100
    assert api.get_link(link.uuid) == link
    assert link in api.list_links()
    faster = api.update_link(
        link.uuid, cmd.UpdateLink(generation=link.generation, bandwidth_gbps=400, latency_ms=12.5)
    )
    assert (faster.bandwidth_gbps, faster.latency_ms) == (400, 12.5)
    with pytest.raises(ConcurrentUpdateError):
        api.update_link(link.uuid, cmd.UpdateLink(generation=link.generation, bandwidth_gbps=1))
    with pytest.raises(ValidationError):
        api.create_link({"name": unique("l"), "endpoints": [a.name, a.name], "bandwidth_gbps": 1})
    api.delete_link(link.uuid)
    with pytest.raises(NotFoundError):
        api.get_link(link.uuid)

    port = api.create_facility_port(
        cmd.CreateFacilityPort(name="p1", site=a.name, vlans="100-199", bandwidth_gbps=10)
    )
    assert (port.site, port.vlan_count, port.bandwidth_gbps) == (a.name, 100, 10)
    assert api.get_facility_port(port.uuid) == port
    assert port in api.list_facility_ports()
    moved = api.update_facility_port(
        port.uuid, cmd.UpdateFacilityPort(generation=port.generation, vlans="100-109", device="sw1")
    )
    assert (moved.vlans, moved.vlan_count, moved.device) == ("100-109", 10, "sw1")
    api.delete_facility_port(port.uuid)
    with pytest.raises(NotFoundError):
        api.get_facility_port(port.uuid)


def test_topology_export_then_import_changes_nothing(api: Client) -> None:
    a = api.create_provider(cmd.CreateProvider(name=unique("ta"), kind=ProviderKind.SITE))
    b = api.create_provider(cmd.CreateProvider(name=unique("tb"), kind=ProviderKind.SITE))
    api.create_provider(
        cmd.CreateProvider(
            name=unique("th"),
            kind=ProviderKind.HOST,
            parent_uuid=uuidlib.UUID(a.uuid),
            inventories={"VCPU": Inventory(total=8)},
        )
    )
    api.create_link(cmd.CreateLink(name=unique("tl"), endpoints=(a.name, b.name), bandwidth_gbps=10))
    doc = api.export_topology()
    names = {node.name for node, _, _ in doc.walk()}
    assert {a.name, b.name} <= names
    report = api.import_topology(doc)
    assert (report.created, report.updated, report.deleted) == (0, 0, 0)
    assert report.unchanged >= len(names)
    pruned = api.import_topology(doc, prune=True)
    assert (pruned.created, pruned.updated, pruned.deleted) == (0, 0, 0)
    assert pruned.unchanged == report.unchanged
    assert api.export_topology() == doc


def test_paging_iterates_every_provider(api: Client) -> None:
    site = api.create_provider(cmd.CreateProvider(name=unique("ps"), kind=ProviderKind.SITE))
    made = {
        api.create_provider(
            cmd.CreateProvider(name=f"{site.name}-h{i}", kind=ProviderKind.HOST, parent_uuid=site.uuid)
        ).uuid
        for i in range(7)
    }
    first = api.list_providers(parent=site.uuid, limit=3)
    assert len(first.items) == 3
    assert first.next_cursor is not None
    seen = [p.uuid for p in api.iter_providers(parent=site.uuid, kind=["host"], page_size=3)]
    assert len(seen) == 7
    assert set(seen) == made


def test_the_real_limiter_is_honoured(tmp_path: Path) -> None:
    app = make_app(tmp_path / "limited.db", rate_per_s=0.1, rate_burst=1)
    admin = token(app, Role.ADMIN)
    sleeps = Sleeps()
    with serve(app) as url, Client(url, admin, retry=RetryPolicy(max_attempts=3), sleep=sleeps) as api:
        # A fresh token's bucket starts full: its first request passes without any retry.
        with Client(url, admin, retry=RetryPolicy.none()) as first:
            assert first.list_links() == []
        with pytest.raises(RateLimitedError) as limited:
            api.create_provider(cmd.CreateProvider(name="never", kind=ProviderKind.SITE))
        # A POST refused by the limiter was certainly not processed, so it is retried.
        assert limited.value.attempts == 3
        # A token returns every 10 s; Retry-After counts down from there (a slow machine may have used
        # a second or two of it by now).
        assert limited.value.retry_after is not None
        assert 7 <= limited.value.retry_after <= 10
        assert len(sleeps.waits) == 2
        assert all(7.0 <= w <= 10.0 for w in sleeps.waits), sleeps.waits
        assert api.healthz().status == "ok"  # exempt from limits
    with Client(url, admin, retry=RetryPolicy.none()) as offline, pytest.raises(httpx.ConnectError):
        offline.healthz()


def test_connect_errors_are_retried_then_raised() -> None:
    sleeps = Sleeps()
    policy = RetryPolicy(max_attempts=3, jitter=lambda cap: cap)
    with (
        Client(f"http://127.0.0.1:{free_port()}", "t", retry=policy, sleep=sleeps) as api,
        pytest.raises(httpx.ConnectError),
    ):
        api.create_provider(cmd.CreateProvider(name="x", kind=ProviderKind.SITE))
    assert sleeps.waits == [0.25, 0.5]


@pytest.mark.anyio
async def test_async_client_core_flow(tmp_path: Path) -> None:
    app = make_app(tmp_path / "a.db")
    admin = token(app, Role.ADMIN)
    async with AsyncClient("http://sb", admin, transport=httpx.ASGITransport(app=app)) as api:
        assert (await api.healthz()).status == "ok"
        assert (await api.readyz()).database == "sqlite"
        site = await api.create_provider(cmd.CreateProvider(name="s1", kind=ProviderKind.SITE))
        for i in range(5):
            await api.create_provider(
                {"name": f"h{i}", "kind": "host", "parent_uuid": site.uuid, "inventories": {"VCPU": 16}}
            )
        hosts = [p async for p in api.iter_providers(kind=["host"], page_size=2)]
        assert [h.name for h in hosts] == [f"h{i}" for i in range(5)]
        inv = await api.set_inventories(hosts[0].uuid, {"generation": hosts[0].generation, "inventories": {}})
        assert inv.inventories == {}
        with pytest.raises(ConcurrentUpdateError):
            await api.set_inventories(hosts[0].uuid, {"generation": hosts[0].generation, "inventories": {}})
        with pytest.raises(ValidationError) as bad:
            await api.update_provider(site.uuid, {"generation": -1})
        assert "/generation" in bad.value.pointers
        doc = await api.export_topology()
        report = await api.import_topology(doc)
        assert (report.created, report.updated, report.deleted, report.unchanged) == (0, 0, 0, 6)
    async with AsyncClient("http://sb", transport=httpx.ASGITransport(app=app)) as anonymous:
        with pytest.raises(AuthenticationError):
            await anonymous.list_links()


# -- retries against a misbehaving server ----------------------------------------------------------------


Handler = Callable[[httpx.Request], httpx.Response]


def problem(status: int, code: str, **headers: str) -> httpx.Response:
    body = {"type": "about:blank", "title": "x", "status": status, "detail": code, "code": code}
    return httpx.Response(status, json=body, headers={"Content-Type": "application/problem+json", **headers})


OK_LINKS = httpx.Response(200, json=[])
SITE: dict[str, object] = {
    "uuid": "7d1e5f7e-0000-4000-8000-000000000001",
    "name": "s",
    "kind": "site",
    "parent_uuid": None,
    "location": None,
    "generation": 0,
    "traits": [],
    "aggregates": [],
    "inventories": {},
    "created_at": "2025-01-01T00:00:00Z",
    "updated_at": "2025-01-01T00:00:00Z",
}


@dataclass
class Flaky:
    """A fake server answering from a script of responses or exceptions, recording each request."""

    script: list[httpx.Response | Exception]
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


def client_for(flaky: Flaky, sleeps: Sleeps, *, max_attempts: int = 4, total_timeout: float = 60) -> Client:
    retry = RetryPolicy(max_attempts=max_attempts, total_timeout=total_timeout, jitter=lambda cap: cap)
    return Client("http://fake", "t", retry=retry, transport=httpx.MockTransport(flaky), sleep=sleeps)


def test_429_waits_the_advertised_retry_after() -> None:
    flaky, sleeps = Flaky([problem(429, "rate_limited", **{"Retry-After": "3"}), OK_LINKS]), Sleeps()
    with client_for(flaky, sleeps) as api:
        assert api.list_links() == []
    assert sleeps.waits == [3.0]
    assert len(flaky.requests) == 2
    assert flaky.requests[0].headers["Authorization"] == "Bearer t"


def test_retry_after_as_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=20)
    flaky = Flaky(
        [problem(503, "overloaded", **{"Retry-After": format_datetime(when, usegmt=True)}), OK_LINKS]
    )
    sleeps = Sleeps()
    with client_for(flaky, sleeps) as api:
        api.list_links()
    assert len(sleeps.waits) == 1
    assert 17 < sleeps.waits[0] <= 20
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_retry_after("Wed, 01 Jan 2025 00:00:07 GMT", now=now) == 7
    assert parse_retry_after("Tue, 31 Dec 2024 00:00:00 GMT", now=now) == 0
    assert parse_retry_after("120") == 120
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_503_is_retried_with_exponential_backoff() -> None:
    flaky = Flaky([problem(503, "unavailable"), problem(503, "unavailable"), OK_LINKS])
    sleeps = Sleeps()
    with client_for(flaky, sleeps) as api:
        assert api.list_links() == []
    assert sleeps.waits == [0.25, 0.5]


def test_full_jitter_stays_under_the_cap() -> None:
    policy = RetryPolicy(backoff_base=1.0, backoff_max=4.0)
    waits = [policy.backoff(n) for n in range(1, 8) for _ in range(50)]
    assert all(0 <= w <= 4.0 for w in waits)
    assert len(set(waits)) > 1


def test_attempts_are_bounded() -> None:
    flaky = Flaky([problem(503, "overloaded") for _ in range(10)])
    sleeps = Sleeps()
    with client_for(flaky, sleeps, max_attempts=4) as api, pytest.raises(UnavailableError) as err:
        api.get_link("abc")
    assert len(flaky.requests) == 4
    assert err.value.attempts == 4
    assert len(sleeps.waits) == 3


def test_total_time_is_bounded() -> None:
    flaky = Flaky([problem(429, "rate_limited", **{"Retry-After": "20"}) for _ in range(5)])
    sleeps = Sleeps()
    with client_for(flaky, sleeps, total_timeout=30) as api, pytest.raises(RateLimitedError) as err:
        api.list_links()
    assert sleeps.waits == [20.0]  # a second 20 s wait would overrun the 30 s budget
    assert err.value.retry_after == 20


def test_too_long_retry_after_is_not_waited() -> None:
    flaky = Flaky([problem(429, "rate_limited", **{"Retry-After": "3600"}), OK_LINKS])
    sleeps = Sleeps()
    with client_for(flaky, sleeps) as api, pytest.raises(RateLimitedError):
        api.list_links()
    assert sleeps.waits == []


def test_post_is_not_retried_after_a_read_timeout() -> None:
    flaky = Flaky([httpx.ReadTimeout("slow"), httpx.Response(201, json=SITE)])
    sleeps = Sleeps()
    with client_for(flaky, sleeps) as api, pytest.raises(httpx.ReadTimeout):
        api.create_provider(cmd.CreateProvider(name="s", kind=ProviderKind.SITE))
    assert len(flaky.requests) == 1
    assert sleeps.waits == []


def test_post_is_not_retried_after_a_dropped_response() -> None:
    flaky = Flaky([httpx.RemoteProtocolError("peer closed"), httpx.Response(201, json=SITE)])
    with client_for(flaky, Sleeps()) as api, pytest.raises(httpx.RemoteProtocolError):
        api.create_provider(cmd.CreateProvider(name="s", kind=ProviderKind.SITE))
    assert len(flaky.requests) == 1


def test_post_is_retried_after_a_connect_error() -> None:
    flaky = Flaky(
        [httpx.ConnectError("refused"), httpx.ConnectTimeout("no SYN-ACK"), httpx.Response(201, json=SITE)]
    )
    sleeps = Sleeps()
    with client_for(flaky, sleeps) as api:
        assert api.create_provider(cmd.CreateProvider(name="s", kind=ProviderKind.SITE)).name == "s"
    assert len(flaky.requests) == 3
    assert sleeps.waits == [0.25, 0.5]
    assert flaky.requests[2].read() == b'{"name":"s","kind":"site"}'


def test_post_503_is_retried_only_when_our_limiter_refused_it() -> None:
    refused = Flaky([problem(503, "overloaded", **{"Retry-After": "1"}), httpx.Response(201, json=SITE)])
    with client_for(refused, Sleeps()) as api:
        api.create_provider(cmd.CreateProvider(name="s", kind=ProviderKind.SITE))
    assert len(refused.requests) == 2
    proxied = Flaky([httpx.Response(503, text="bad gateway"), httpx.Response(201, json=SITE)])
    with client_for(proxied, Sleeps()) as api, pytest.raises(UnavailableError) as err:
        api.create_provider(cmd.CreateProvider(name="s", kind=ProviderKind.SITE))
    assert len(proxied.requests) == 1
    assert err.value.code == "unavailable"
    assert err.value.detail == "bad gateway"


def test_idempotent_requests_are_retried_after_a_read_timeout() -> None:
    flaky = Flaky([httpx.ReadTimeout("slow"), httpx.ReadError("reset"), OK_LINKS])
    with client_for(flaky, Sleeps()) as api:
        assert api.list_links() == []
    put = Flaky([httpx.ReadTimeout("slow"), httpx.Response(200, json={"name": "CUSTOM_T", "custom": True})])
    with client_for(put, Sleeps()) as api:
        assert api.put_trait("CUSTOM_T").custom
    assert len(put.requests) == 2


def test_readyz_is_not_retried() -> None:
    flaky = Flaky([problem(503, "unavailable", **{"Retry-After": "1"})])
    with client_for(flaky, Sleeps()) as api, pytest.raises(UnavailableError):
        api.readyz()
    assert len(flaky.requests) == 1


def test_problem_codes_pick_the_exception() -> None:
    flaky = Flaky(
        [problem(409, "capacity_conflict"), problem(409, "in_use"), problem(413, "payload_too_large")]
    )
    with client_for(flaky, Sleeps()) as api:
        with pytest.raises(CapacityConflictError):
            api.delete_link("x")
        with pytest.raises(ConflictError) as in_use:
            api.delete_link("x")
        assert type(in_use.value) is ConflictError
        with pytest.raises(SlotbrokerAPIError) as big:
            api.delete_link("x")
        assert (big.value.status, big.value.code) == (413, "payload_too_large")


@pytest.mark.anyio
async def test_async_retries_share_the_rules() -> None:
    flaky = Flaky([problem(429, "rate_limited", **{"Retry-After": "2"}), httpx.ReadTimeout("slow")])
    sleeps = Sleeps()
    api = AsyncClient(
        "http://fake",
        "t",
        retry=RetryPolicy(jitter=lambda cap: cap),
        transport=httpx.MockTransport(flaky),
        sleep=sleeps.async_sleep,
    )
    async with api:
        with pytest.raises(httpx.ReadTimeout):
            await api.create_facility_port({"name": "p", "site": "s", "vlans": "1", "bandwidth_gbps": 1})
    assert sleeps.waits == [2.0]  # retried the limiter's 429, not the read timeout
    assert len(flaky.requests) == 2
