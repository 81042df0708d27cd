"""The MCP server with the SDK's own client, over both transports against a live server: ``/mcp``
(streamable HTTP, in the API app) and ``slotbroker mcp`` (stdio, a subprocess calling the server).

One server for the module (its planner pool runs the jobs); each test books hosts of its own.
"""

from __future__ import annotations

import ast
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from fastapi import FastAPI
from mcp import Client as McpClient
from mcp import MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent, TextResourceContents
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

import slotbroker
from live_server import serve, token
from planner_support import fast_settings
from slotbroker.api.app import create_app
from slotbroker.client import Client
from slotbroker.config import Settings
from slotbroker.mcp.server import call
from slotbroker.mcp.tools import BY_NAME, TOOLS
from slotbroker.services.access.tokens import Role
from slotbroker.services.planner import Planner
from slotbroker.services.planner.provisioners.simulated import SimulatedConfig, SimulatedProvisioner
from slotbroker.store.db import Database

SRC = Path(slotbroker.__file__).resolve().parents[1]
HOUR = 3600
TOPOLOGY: dict[str, Any] = {
    "providers": [
        {
            "name": "S1",
            "kind": "site",
            "children": [
                {"name": f"g{i}", "kind": "host", "inventories": {"VCPU": 8, "GPU_A30": 2}} for i in range(4)
            ],
        }
    ]
}
TERMINAL = {"succeeded", "failed", "canceled", "expired"}
Connect = Callable[[str], AbstractAsyncContextManager[McpClient]]


@dataclass
class Broker:
    app: FastAPI
    url: str
    admin: str
    user: str  # project "science"
    other: str  # project "rival"


def make_app(db_path: Path, **settings: Any) -> FastAPI:
    url = f"sqlite:///{db_path}"
    quick = SimulatedProvisioner(SimulatedConfig(run_s=0.2, logs=("hello from the job",)))
    slow = SimulatedProvisioner(SimulatedConfig(run_s=120.0), name="slow")
    batch = SimulatedProvisioner(name="batch")
    # "batch" is reserved for operators, as SLOTBROKER_PROVISIONER_ROLES=batch=operator would do
    planner_settings = replace(fast_settings(workers=4), roles={"batch": Role.OPERATOR})
    db = Database(url)
    planner = Planner(
        db, settings=planner_settings, provisioners={"simulated": quick, "slow": slow, "batch": batch}
    )
    base = {
        "rate_per_s": 10_000.0,
        "rate_burst": 10_000,
        "planner_workers": 4,
        "event_loop_interval_s": 0.2,
        "find_slot_async_cost": 0.0,  # every find-slot runs as a job (202): find_slot waits for it
    }
    return create_app(
        Settings(database_url=url, migrate_on_start=True, **{**base, **settings}), db=db, planner=planner
    )


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    app = make_app(tmp_path_factory.mktemp("mcp") / "mcp.db")
    admin = token(app, Role.ADMIN, project="ops")
    with serve(app, lifespan="on") as url:
        with Client(url, admin) as api:
            api.import_topology(TOPOLOGY)
        yield Broker(app, url, admin, token(app, Role.USER, "science"), token(app, Role.USER, "rival"))


def over_http(url: str) -> Connect:
    @asynccontextmanager
    async def connect(tok: str) -> AsyncIterator[McpClient]:
        headers = {"Authorization": f"Bearer {tok}"}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=60) as http,
            McpClient(streamable_http_client(url + "/mcp", http_client=http)) as client,
        ):
            yield client

    return connect


def over_stdio(url: str) -> Connect:
    @asynccontextmanager
    async def connect(tok: str) -> AsyncIterator[McpClient]:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(SRC),
            "SLOTBROKER_URL": url,
            "SLOTBROKER_TOKEN": tok,
        }
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "slotbroker.cli.main", "mcp"], env=env
        )
        async with McpClient(params, read_timeout_seconds=60) as client:
            yield client

    return connect


@dataclass(frozen=True)
class Transport:
    open: Connect
    host: str  # the host this transport's agent flow books, so the two never meet

    def __call__(self, tok: str) -> AbstractAsyncContextManager[McpClient]:
        return self.open(tok)


@pytest.fixture(params=["http", "stdio"])
def connect(request: pytest.FixtureRequest, broker: Broker) -> Transport:
    if request.param == "http":
        return Transport(over_http(broker.url), "g0")
    return Transport(over_stdio(broker.url), "g1")


def data(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert isinstance(result.content[0], TextContent)
    assert result.content[0].text
    assert result.structured_content is not None
    return dict(result.structured_content)


def problem(result: CallToolResult) -> dict[str, Any]:
    assert result.is_error, result.structured_content
    assert result.structured_content is not None
    text = result.content[0]
    assert isinstance(text, TextContent)
    assert result.structured_content["code"] in text.text  # models that read only text see it too
    return dict(result.structured_content)


def gpu_request(host: str, hours: int = 2, gpus: int = 1) -> dict[str, Any]:
    return {
        "components": [{"name": "gpu", "host": host, "resources": {"GPU_A30": gpus, "VCPU": 1}}],
        "earliest_start": datetime.now(UTC).isoformat(),
        "latest_end": (datetime.now(UTC) + timedelta(hours=hours + 4)).isoformat(),
        "duration": hours * HOUR,
    }


def host_free(broker: Broker, host: str, start: datetime, hours: int) -> list[int]:
    with Client(broker.url, broker.admin) as api:
        view = api.calendar(
            start, start + timedelta(hours=hours), resolution="hour", kind=["host"], name=[host]
        )
    return next(r.free for r in view.rows if r.resource_class == "GPU_A30")


async def wait_job(client: McpClient, job_id: str, states: set[str], timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = data(await client.call_tool("get_job", {"job_id": job_id}))
        if job["state"] in states:
            return job
        assert time.monotonic() < deadline, job
        await anyio.sleep(0.1)


@pytest.mark.anyio
async def test_tools_are_listed_with_schemas_and_annotations(connect: Transport, broker: Broker) -> None:
    async with connect(broker.user) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == {spec.name for spec in TOOLS}
        assert set(tools) >= {
            "list_sites", "find_slot", "create_offers", "accept_offer", "reject_offer", "list_leases",
            "get_lease", "extend_lease", "compact_lease", "compact_leases", "cancel_lease", "create_job",
            "get_job", "job_logs", "cancel_job",
        }  # fmt: skip
        # input schemas are the API's models: find_slot takes a find-slot request's fields
        assert "components" in tools["find_slot"].input_schema["properties"]
        assert "provisioner" in tools["create_job"].input_schema["required"]
        assert "components" in tools["create_offers"].input_schema["properties"]["request"]["properties"]
        for name in (
            "create_offers", "accept_offer", "create_job", "extend_lease", "compact_lease", "compact_leases"
        ):  # fmt: skip
            notes = tools[name].annotations
            assert notes is not None
            assert (notes.destructive_hint, notes.idempotent_hint) == (True, False), name
            assert notes.read_only_hint is False
        for name in ("list_sites", "find_slot", "list_leases", "get_lease", "get_job", "job_logs"):
            notes = tools[name].annotations
            assert notes is not None
            assert notes.read_only_hint is True, name
        assert tools["find_slot"].output_schema is not None
        prompts = (await client.list_prompts()).prompts
        assert [p.name for p in prompts] == ["book_gpus"]
        prompt = await client.get_prompt("book_gpus", {"gpus": "2", "hours": "3"})
        first = prompt.messages[0].content
        assert isinstance(first, TextContent)
        assert "2 GPU(s) for 3 hour(s)" in first.text


@pytest.mark.anyio
async def test_agent_flow_gives_the_calendar_back(connect: Transport, broker: Broker) -> None:
    host = connect.host
    # from the next whole hour (a cancelled lease keeps the minutes it was ACTIVE)
    window = datetime.fromtimestamp((int(time.time()) + 300) // HOUR * HOUR + HOUR, UTC)
    before = host_free(broker, host, window, 4)
    async with connect(broker.user) as client:
        sites = data(await client.call_tool("list_sites", {}))
        (site,) = sites["items"]
        assert site["name"] == "S1"
        gpus = next(c for c in site["classes"] if c["resource_class"] == "GPU_A30")
        assert gpus["capacity"] == 8
        assert gpus["largest_free"] == 2

        answer = await client.call_tool("find_slot", gpu_request(host, gpus=3))  # a host has 2
        nothing = data(answer)
        assert nothing["windows"] == []
        assert nothing["explanation"]["blockers"]  # why, inside find_slot
        summary = answer.content[0]
        assert isinstance(summary, TextContent)
        assert summary.text.startswith("Nothing fits.")

        found = data(await client.call_tool("find_slot", gpu_request(host)))
        assert found["windows"], found
        assert found["windows"][0]["placement"] == {"gpu": [host]}

        offers = data(
            await client.call_tool("create_offers", {"request": gpu_request(host), "max_offers": 2})
        )
        assert offers["status"] == "OPEN"
        assert offers["project"] == "science"
        first, *rest = offers["offers"]
        lease = data(await client.call_tool("accept_offer", {"offer_id": first["id"]}))
        assert lease["status"] in ("PENDING", "ACTIVE")  # it starts at the next whole second
        assert host_free(broker, host, window, 4)[0] == before[0] - 1  # booked
        for other in rest:  # the accept released the set's other offers; rejecting again is idempotent
            assert (
                data(await client.call_tool("reject_offer", {"offer_id": other["id"]}))["state"] == "REJECTED"
            )

        job = data(
            await client.call_tool(
                "create_job",
                {"lease_id": lease["uuid"], "provisioner": "simulated", "workload": {"command": ["x"]}},
            )
        )
        done = await wait_job(client, job["id"], TERMINAL)
        assert done["state"] == "succeeded", done
        logs = data(await client.call_tool("job_logs", {"job_id": job["id"]}))
        assert "hello from the job" in [line["line"] for line in logs["items"]]

        slow = data(await client.call_tool("create_job", {"lease_id": lease["uuid"], "provisioner": "slow"}))
        await wait_job(client, slow["id"], {"running"})
        data(await client.call_tool("cancel_job", {"job_id": slow["id"]}))
        assert (await wait_job(client, slow["id"], TERMINAL))["state"] == "canceled"

        read = data(await client.call_tool("get_lease", {"lease_id": lease["uuid"]}))
        later = (datetime.fromisoformat(read["end"]) + timedelta(hours=1)).isoformat()
        longer = data(await client.call_tool("extend_lease", {"lease_id": lease["uuid"], "end": later}))
        assert datetime.fromisoformat(longer["end"]) == datetime.fromisoformat(later)
        assert longer["generation"] > read["generation"]
        stale = {"lease_id": lease["uuid"], "end": later, "generation": read["generation"]}
        assert problem(await client.call_tool("extend_lease", stale))["code"] == "concurrent_update"

        cancelled = data(await client.call_tool("cancel_lease", {"lease_id": lease["uuid"]}))
        assert cancelled["status"] == "CANCELLED"
    assert host_free(broker, host, window, 4) == before


@pytest.mark.anyio
async def test_bad_arguments_are_tool_errors_naming_the_field(connect: Transport, broker: Broker) -> None:
    async with connect(broker.user) as client:
        bad = problem(await client.call_tool("find_slot", {**gpu_request("g2"), "duration": -5}))
        assert bad["code"] == "validation_error"
        assert [e["pointer"] for e in bad["errors"]] == ["/duration"]
        unknown = problem(await client.call_tool("find_slot", {**gpu_request("g2"), "colour": "red"}))
        assert "/colour" in [e["pointer"] for e in unknown["errors"]]
        when = problem(await client.call_tool("extend_lease", {"lease_id": "x", "end": "tomorrow-ish"}))
        assert [e["pointer"] for e in when["errors"]] == ["/end"]
        query = problem(await client.call_tool("list_leases", {"status": ["BOGUS"]}))
        assert query["code"] == "validation_error"
        assert [e["pointer"] for e in query["errors"]] == ["/status/0"]  # the tool's argument, not #/query
        missing = problem(await client.call_tool("accept_offer", {}))
        assert [e["pointer"] for e in missing["errors"]] == ["/offer_id"]
        job = problem(await client.call_tool("create_job", {"lease_id": None, "provisioner": ""}))
        assert job["status"] == 422
        assert job["errors"]


@pytest.mark.anyio
async def test_another_projects_lease_is_invisible(connect: Transport, broker: Broker) -> None:
    with Client(broker.url, broker.other) as rival:
        view = rival.create_offer_set({"request": gpu_request("g3"), "max_offers": 1})
        theirs = rival.accept_offer(view.offers[0].id).uuid
    try:
        async with connect(broker.user) as client:
            hidden = problem(await client.call_tool("get_lease", {"lease_id": theirs}))
            assert hidden["code"] == "not_found"
            assert hidden["status"] == 404
            assert problem(await client.call_tool("cancel_lease", {"lease_id": theirs}))["status"] == 404
            page = data(await client.call_tool("list_leases", {}))
            assert theirs not in [x["id"] for x in page["items"]]
            assert all(x["project"] == "science" for x in page["items"])
            read = await client.read_resource("slotbroker://leases")
            contents = read.contents[0]
            assert isinstance(contents, TextResourceContents)
            assert theirs not in contents.text
            calendar = await client.read_resource("slotbroker://sites/S1/calendar")
            text = calendar.contents[0]
            assert isinstance(text, TextResourceContents)
            assert '"name":"g3"' in text.text
            with pytest.raises(MCPError) as unknown:  # a failed read is a JSON-RPC error with the problem
                await client.read_resource("slotbroker://sites/nowhere/calendar")
            assert unknown.value.error.data["code"] == "not_found"
    finally:
        with Client(broker.url, broker.other) as rival:
            rival.cancel_lease(theirs)


@pytest.mark.anyio
async def test_user_cannot_use_an_operators_provisioner(connect: Transport, broker: Broker) -> None:
    async with connect(broker.user) as client:
        refused = problem(
            await client.call_tool(
                "create_job", {"offer_set": {"request": gpu_request("g2")}, "provisioner": "batch"}
            )
        )
        assert refused["status"] == 403
        assert refused["code"] == "forbidden"
        assert [e["pointer"] for e in refused["errors"]] == ["/provisioner"]
        page = data(await client.call_tool("list_leases", {"status": ["PENDING", "ACTIVE"]}))
        assert page["items"] == []  # nothing was written: no offer set, lease or job
    operator = token(broker.app, Role.OPERATOR, "ops")
    with Client(broker.url, operator) as api:  # the control: an operator's token may use it
        job = api.create_job({"offer_set": {"request": gpu_request("g2")}, "provisioner": "batch"})
        assert job.provisioner == "batch"
        api.cancel_lease(job.lease_id, force=True)  # its job may still be under way


@pytest.mark.anyio
async def test_hosts_on_the_handshake_protocol_connect_too(broker: Broker) -> None:
    """Agent hosts that still open with ``initialize`` (the 2025 protocol) are served by the same /mcp."""
    headers = {"Authorization": f"Bearer {broker.user}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        McpClient(streamable_http_client(broker.url + "/mcp", http_client=http), mode="legacy") as client,
    ):
        assert client.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS
        assert len((await client.list_tools()).tools) == len(TOOLS)
        page = data(await client.call_tool("list_leases", {"limit": 1}))
        assert all(x["project"] == "science" for x in page["items"])


def test_mcp_needs_a_valid_bearer_token(broker: Broker) -> None:
    hello = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    for headers in ({}, {"Authorization": "Bearer sb_not_a_token"}):
        answer = httpx.post(broker.url + "/mcp", json=hello, headers=headers, timeout=10)
        assert answer.status_code == 401
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["code"] == "unauthorized"


@pytest.mark.anyio
async def test_rate_limits_answer_with_retry_after(tmp_path: Path) -> None:
    app = make_app(tmp_path / "limited.db", rate_per_s=0.05, rate_burst=2, planner_workers=0)
    user = token(app, Role.USER, "science")
    with serve(app, lifespan="on") as url:
        async with over_http(url)(user) as client:  # initialize and tools/list are not charged
            assert len((await client.list_tools()).tools) == len(TOOLS)
            for _ in range(2):  # each tool call is one API call, charged to the caller's token
                assert problem(await client.call_tool("get_job", {"job_id": "j"}))["code"] == "not_found"
            answer = await client.call_tool("get_job", {"job_id": "j"})
            limited = problem(answer)
            assert limited["code"] == "rate_limited"
            assert limited["status"] == 429
            assert limited["retry_after"] >= 1  # the API's Retry-After, in seconds
            summary = answer.content[0]
            assert isinstance(summary, TextContent)
            assert f"Retry after {limited['retry_after']:g} s" in summary.text


def test_the_mcp_package_reaches_the_broker_only_through_the_client() -> None:
    """Decision 0025: tools are API calls with the caller's token; nothing in slotbroker/mcp/ may reach a
    service, the store or the engine (whose rules it would then hold, or bypass)."""
    allowed = ("slotbroker.client", "slotbroker.wire", "slotbroker.domain", "slotbroker.mcp")
    package = SRC / "slotbroker" / "mcp"
    offenders = []
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            for name in names:
                ours = name == "slotbroker" or name.startswith("slotbroker.")
                if ours and name != "slotbroker" and not name.startswith(allowed):
                    offenders.append(f"{path.name}: {name}")
    assert len(list(package.glob("*.py"))) >= 8  # the walk found the package
    assert not offenders, offenders


class _NoApi:
    def caller(self, request: Any) -> Any:
        return None


@pytest.mark.anyio
async def test_a_bug_or_an_unknown_tool_is_a_tool_error(monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(api: Any, raw: dict[str, Any]) -> CallToolResult:
        raise KeyError("a bug")

    monkeypatch.setitem(BY_NAME, "broken", replace(BY_NAME["get_job"], name="broken", run=broken))
    bug = problem(await call(_NoApi(), None, "broken", {}))
    assert (bug["status"], bug["code"]) == (500, "internal_error")
    assert "a bug" not in str(bug)  # details stay in the server's log
    unknown = problem(await call(_NoApi(), None, "no_such_tool", {}))
    assert unknown["code"] == "unknown_tool"


async def book_g2_three_hours_ahead(client: McpClient) -> dict[str, Any]:
    """A PENDING lease of one GPU on g2 starting three hours from now, with nothing earlier on g2."""
    later = gpu_request("g2")
    later["earliest_start"] = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    later["latest_end"] = (datetime.now(UTC) + timedelta(hours=9)).isoformat()
    offers = data(await client.call_tool("create_offers", {"request": later, "max_offers": 1}))
    lease: dict[str, Any] = data(
        await client.call_tool("accept_offer", {"offer_id": offers["offers"][0]["id"]})
    )
    return lease


@pytest.mark.anyio
async def test_compact_lease_moves_a_later_lease_to_now(connect: Transport, broker: Broker) -> None:
    async with connect(broker.user) as client:
        lease = await book_g2_three_hours_ahead(client)
        assert lease["status"] == "PENDING"
        try:
            moved = await client.call_tool(
                "compact_lease", {"lease_id": lease["uuid"], "allow_host_swap": False}
            )
            got = data(moved)
            assert got["moved"] is True
            start = datetime.fromisoformat(got["lease"]["start"])
            assert start < datetime.fromisoformat(lease["start"]) - timedelta(hours=2)
            assert got["lease"]["items"][0]["provider_name"] == "g2"
            text = moved.content[0]
            assert isinstance(text, TextContent)
            assert "now starts at" in text.text
            stale = {"lease_id": lease["uuid"], "generation": got["lease"]["generation"] - 1}
            assert problem(await client.call_tool("compact_lease", stale))["code"] == "concurrent_update"
            bad = problem(
                await client.call_tool("compact_lease", {"lease_id": lease["uuid"], "generation": -1})
            )
            assert [e["pointer"] for e in bad["errors"]] == ["/generation"]
        finally:
            data(await client.call_tool("cancel_lease", {"lease_id": lease["uuid"], "force": True}))


@pytest.mark.anyio
async def test_compact_leases_moves_each_named_lease_and_says_why_not(
    connect: Transport, broker: Broker
) -> None:
    async with connect(broker.user) as client:
        lease = await book_g2_three_hours_ahead(client)
        try:
            # a name that resolves to nothing is refused before any lease moves, named by its place
            ask = {"leases": [lease["uuid"], "no-such-lease"], "allow_host_swap": False}
            missing = problem(await client.call_tool("compact_leases", ask))
            assert missing["code"] == "not_found"
            assert [e["pointer"] for e in missing["errors"]] == ["/leases/1"]
            unmoved = data(await client.call_tool("get_lease", {"lease_id": lease["uuid"]}))
            assert unmoved["start"] == lease["start"]

            done = await client.call_tool(
                "compact_leases", {"leases": [lease["uuid"]], "allow_host_swap": False}
            )
            report = data(done)
            assert report["moved"] == 1
            [moved] = report["items"]
            assert moved["moved"] is True
            assert datetime.fromisoformat(moved["start"]) < datetime.fromisoformat(
                lease["start"]
            ) - timedelta(hours=2)
            again = data(await client.call_tool("compact_leases", {"leases": [lease["uuid"]]}))
            assert again["moved"] == 0
            # it now starts at once: still pending with nothing earlier, or already started
            assert again["items"][0]["reason"] in {"no_earlier_window", "due_now", "not_pending"}
            text = done.content[0]
            assert isinstance(text, TextContent)
            assert text.text.startswith("1 of 1 lease(s) moved earlier: ")
            # the API's own request model: its limits, named by pointer
            too_many = problem(await client.call_tool("compact_leases", {"leases": ["x"] * 1001}))
            assert [e["pointer"] for e in too_many["errors"]] == ["/leases"]
            empty = problem(await client.call_tool("compact_leases", {"leases": [""]}))
            assert empty["status"] == 422
            unknown = problem(await client.call_tool("compact_leases", {"colour": "red"}))
            assert [e["pointer"] for e in unknown["errors"]] == ["/colour"]
        finally:
            data(await client.call_tool("cancel_lease", {"lease_id": lease["uuid"], "force": True}))


@pytest.mark.anyio
async def test_the_find_slot_tool_searches_in_the_find_slot_lane(broker: Broker) -> None:
    """The tool calls POST /v1/find-slot in-process, so its search queues with every other one
    (api/find_slot_lane.py) instead of running on the shared pool."""
    lane = broker.app.state.find_slot_lane
    runs: list[Any] = []
    plain = lane.run

    async def counted(call: Any) -> Any:
        runs.append(call)
        return await plain(call)

    lane.run = counted
    try:
        async with over_http(broker.url)(broker.user) as client:
            found = data(await client.call_tool("find_slot", gpu_request("g3")))
    finally:
        del lane.run
    assert found["windows"], found
    assert len(runs) == 1
