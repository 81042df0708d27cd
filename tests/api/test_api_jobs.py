"""/v1/jobs over HTTP (SQLite and PostgreSQL): the embedded pool runs jobs with the simulated provisioner."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from planner_support import fast_settings, make_lease
from slotbroker.api.app import create_app
from slotbroker.bootstrap import planner_workers
from slotbroker.config import Settings
from slotbroker.services.access.tokens import Role, TokenService
from slotbroker.services.planner import Planner
from slotbroker.services.planner.provisioners.simulated import SimulatedConfig, SimulatedProvisioner
from slotbroker.store.db import Database

TERMINAL = {"succeeded", "failed", "canceled", "expired"}


def JobSettings(**kw: Any) -> Settings:  # noqa: N802 - reads like the class it builds
    """Settings with the embedded pool on (the shared fixture turns it off)."""
    return Settings(**{"planner_workers": 4, **kw})


@dataclass
class Env:
    client: TestClient
    db: Database
    sim: SimulatedProvisioner
    slow: SimulatedProvisioner
    alpha: dict[str, str]  # a user of project alpha
    beta: dict[str, str]  # a user of project beta
    admin: dict[str, str]


@pytest.fixture
def env(db: Database) -> Iterator[Env]:
    sim = SimulatedProvisioner(SimulatedConfig(logs=("hello", "world")))
    slow = SimulatedProvisioner(SimulatedConfig(run_s=60.0), name="slow")
    planner = Planner(db, settings=fast_settings(workers=4), provisioners={"simulated": sim, "slow": slow})
    settings = JobSettings(
        database_url=db.url,
        migrate_on_start=False,
        rate_per_s=10_000,
        rate_burst=10_000,
        event_loop_interval_s=0,
    )
    app: FastAPI = create_app(settings, db=db, planner=planner)
    tokens = TokenService(db)

    def token(project: str, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens.create(project=project, role=role, name=f't-{project}')}"}

    with TestClient(app) as client:
        yield Env(
            client,
            db,
            sim,
            slow,
            token("alpha", Role.USER),
            token("beta", Role.USER),
            token("ops", Role.ADMIN),
        )


def body(lease: str, **kw: object) -> dict[str, object]:
    return {"lease_id": lease, "provisioner": "simulated", "workload": {"command": ["true"]}, **kw}


def wait_terminal(env: Env, job_id: str, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        got = env.client.get(f"/v1/jobs/{job_id}", headers=env.alpha).json()
        if got["state"] in TERMINAL:
            return dict(got)
        assert time.monotonic() < deadline, got
        time.sleep(0.02)


def test_create_in_lease_runs_to_success_with_logs(env: Env) -> None:
    lease = make_lease(env.db, project="alpha")
    r = env.client.post("/v1/jobs", json=body(lease, id="job-1", name="first"), headers=env.alpha)
    assert r.status_code == 201, r.text
    job = r.json()
    assert r.headers["location"] == "/v1/jobs/job-1"
    assert job["project"] == "alpha"
    assert job["lease_id"] == lease
    done = wait_terminal(env, "job-1")
    assert done["state"] == "succeeded"
    states = [t["to_state"] for t in done["transitions"]]
    assert states[0] == "pending"
    assert states[-1] == "succeeded"
    logs = env.client.get("/v1/jobs/job-1/logs", headers=env.alpha).json()
    lines = [x["line"] for x in logs["items"] if x["stream"] == "run"]
    assert lines == ["hello", "world"]
    after = logs["items"][0]["id"]
    rest = env.client.get(f"/v1/jobs/job-1/logs?after={after}", headers=env.alpha).json()
    assert [x["id"] for x in rest["items"]] == [x["id"] for x in logs["items"][1:]]
    # idempotent by id; another spec under the same id is a conflict
    again = env.client.post("/v1/jobs", json=body(lease, id="job-1", name="first"), headers=env.alpha)
    assert again.status_code == 201
    assert again.json()["state"] == "succeeded"
    other = env.client.post(
        "/v1/jobs", json=body(lease, id="job-1", workload={"command": ["x"]}), headers=env.alpha
    )
    assert other.status_code == 409
    assert other.headers["content-type"].startswith("application/problem+json")
    assert all(c == 1 for c in env.sim.releases.values())


def test_list_pages_and_filters(env: Env) -> None:
    lease = make_lease(env.db, project="alpha")
    other = make_lease(env.db, project="alpha")
    ids = [env.client.post("/v1/jobs", json=body(lease), headers=env.alpha).json()["id"] for _ in range(7)]
    env.client.post("/v1/jobs", json=body(other), headers=env.alpha)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 3, "lease": lease}
        if cursor:
            params["cursor"] = cursor
        page = env.client.get("/v1/jobs", params=params, headers=env.alpha).json()
        seen += [j["id"] for j in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    for job_id in ids:
        wait_terminal(env, job_id)
    done = env.client.get("/v1/jobs", params={"state": "succeeded", "limit": 100}, headers=env.alpha).json()
    assert len(done["items"]) == 8
    none = env.client.get("/v1/jobs", params={"state": "running"}, headers=env.alpha).json()
    assert none["items"] == []
    bad = env.client.get("/v1/jobs", params={"cursor": "garbage"}, headers=env.alpha)
    assert bad.status_code in (400, 422)
    assert bad.json()["code"] == "validation_error"


def test_cancel_a_running_job_releases_once(env: Env) -> None:
    lease = make_lease(env.db, project="alpha")
    r = env.client.post("/v1/jobs", json=body(lease, provisioner="slow", id="long"), headers=env.alpha)
    assert r.status_code == 201
    deadline = time.monotonic() + 10
    while env.client.get("/v1/jobs/long", headers=env.alpha).json()["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    c = env.client.post("/v1/jobs/long/cancel", headers=env.alpha)
    assert c.status_code == 200
    assert c.json()["cancel_requested"] is True
    done = wait_terminal(env, "long")
    assert done["state"] == "canceled"
    assert list(env.slow.releases.values()) == [1]
    assert env.client.post("/v1/jobs/long/cancel", headers=env.alpha).json()["state"] == "canceled"


def test_event_stream_until_terminal(env: Env) -> None:
    lease = make_lease(env.db, project="alpha")
    env.client.post("/v1/jobs", json=body(lease, id="ev"), headers=env.alpha)
    events: list[tuple[str, dict[str, object]]] = []
    with env.client.stream("GET", "/v1/jobs/ev/events", headers=env.alpha) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        kind = ""
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[6:])))
    states = [d["to_state"] for k, d in events if k == "state"]
    assert states[0] == "pending"
    assert states[-1] == "succeeded"
    assert set(states) <= {"pending", "provisioning", "submitted", "running", "succeeded"}
    assert events[-1][0] == "end"
    assert events[-1][1]["state"] == "succeeded"
    # resuming after the last seen id sends only what came after it
    with env.client.stream("GET", "/v1/jobs/ev/events", headers={**env.alpha, "Last-Event-ID": "1"}) as r:
        text = r.read().decode()
    assert '"index":0' not in text
    assert '"index":1' not in text
    assert "event: end" in text


def test_event_stream_times_out(env: Env) -> None:
    lease = make_lease(env.db, project="alpha")
    env.client.post("/v1/jobs", json=body(lease, provisioner="slow", id="slow-ev"), headers=env.alpha)
    with env.client.stream("GET", "/v1/jobs/slow-ev/events?timeout=0.5", headers=env.alpha) as r:
        text = r.read().decode()
    assert "event: timeout" in text
    env.client.post("/v1/jobs/slow-ev/cancel", headers=env.alpha)
    wait_terminal(env, "slow-ev")


def test_project_isolation(env: Env) -> None:
    lease = make_lease(env.db, project="alpha")
    job = env.client.post("/v1/jobs", json=body(lease, id="mine"), headers=env.alpha).json()
    for path in ("", "/logs", "/events"):
        r = env.client.get(f"/v1/jobs/{job['id']}{path}", headers=env.beta)
        assert r.status_code == 404, path
        assert r.json()["code"] == "not_found"
    assert env.client.post("/v1/jobs/mine/cancel", headers=env.beta).status_code == 404
    assert env.client.get("/v1/jobs", headers=env.beta).json()["items"] == []
    assert env.client.get("/v1/jobs?project=alpha", headers=env.beta).json()["items"] == []
    # beta cannot create in alpha's lease
    assert env.client.post("/v1/jobs", json=body(lease), headers=env.beta).status_code == 404
    # the admin sees it, and filters by project
    assert env.client.get("/v1/jobs/mine", headers=env.admin).status_code == 200
    assert [j["id"] for j in env.client.get("/v1/jobs?project=alpha", headers=env.admin).json()["items"]] == [
        "mine"
    ]
    assert env.client.get("/v1/jobs?project=beta", headers=env.admin).json()["items"] == []
    wait_terminal(env, "mine")


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"provisioner": "simulated"}, 422),  # neither lease nor offer_set
        ({"lease_id": "not-a-uuid", "provisioner": "simulated"}, 422),
        ({"lease_id": "00000000-0000-0000-0000-000000000000", "provisioner": "nope"}, 422),
        ({"lease_id": "00000000-0000-0000-0000-000000000000", "provisioner": "simulated"}, 404),
        ({"lease_id": "00000000-0000-0000-0000-000000000000", "provisioner": "simulated", "bogus": 1}, 422),
        (
            {
                "lease_id": "00000000-0000-0000-0000-000000000000",
                "provisioner": "simulated",
                "workload": {"command": [1]},
            },
            422,
        ),
    ],
)
def test_bad_input(env: Env, payload: dict[str, object], status: int) -> None:
    r = env.client.post("/v1/jobs", json=payload, headers=env.alpha)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert env.client.get("/v1/jobs/nope", headers=env.alpha).status_code == 404
    assert env.client.get("/v1/jobs", params={"limit": 0}, headers=env.alpha).status_code == 422
    assert env.client.post("/v1/jobs", json=payload).status_code == 401


def test_ended_lease_is_refused(env: Env) -> None:
    lease = make_lease(env.db, project="alpha", status="ENDED")
    r = env.client.post("/v1/jobs", json=body(lease), headers=env.alpha)
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"


def test_pool_setting_zero_disables_the_pool(db: Database) -> None:
    planner = Planner(db, settings=fast_settings(), provisioners={"simulated": SimulatedProvisioner()})
    settings = JobSettings(
        database_url=db.url, migrate_on_start=False, event_loop_interval_s=0, planner_workers=0
    )
    app = create_app(settings, db=db, planner=planner)
    assert planner_workers(settings, planner) == 0
    with TestClient(app):
        assert app.state.planner_pool is None


def test_client_methods(env: Env) -> None:
    from slotbroker.client import Client, NotFoundError

    lease = make_lease(env.db, project="alpha")
    # TestClient is an httpx2.Client (starlette prefers httpx2, which mcp installs): the same interface
    http = cast(httpx.Client, env.client)
    api = Client("http://testserver", env.alpha["Authorization"].split()[1], http_client=http)
    job = api.create_job(body(lease, id="c-1"))
    assert job.id == "c-1"
    events = list(api.job_events("c-1"))
    assert events[-1].event == "end"
    assert events[-1].data["state"] == "succeeded"
    states = [e.transition.to_state for e in events if e.transition is not None]
    assert states[0] == "pending"
    assert states[-1] == "succeeded"
    assert api.get_job("c-1").state == "succeeded"
    api.create_job(body(lease, id="c-2"))
    assert [j.id for j in api.iter_jobs(lease=lease, page_size=1)] == ["c-2", "c-1"]
    assert api.list_jobs(limit=1).next_cursor is not None
    assert [x.line for x in api.job_logs("c-1").items if x.stream == "run"] == ["hello", "world"]
    assert api.cancel_job("c-1").state == "succeeded"
    with pytest.raises(NotFoundError):
        list(api.job_events("missing"))
    wait_terminal(env, "c-2")


def test_cli_submit_list_show_cancel_logs(tmp_path: Path) -> None:
    """``slotbroker jobs`` through a live server (tests/live_server.py) with a user token of alpha."""
    from typer.testing import CliRunner

    from live_server import make_app, serve, token
    from slotbroker.cli.main import app as cli
    from slotbroker.services.access.tokens import Role

    path = tmp_path / "cli.db"
    api = make_app(path)
    lease = make_lease(api.state.services.db, project="alpha")
    runner = CliRunner()

    with serve(api) as url:
        alpha = ("--url", url, "--token", token(api, Role.USER, "alpha"))

        def run(*args: str) -> Any:
            result = runner.invoke(cli, [*args[:2], *alpha, *args[2:]], catch_exceptions=False)
            assert result.exit_code == 0, result.output
            return json.loads(result.output) if "json" in args else result.output

        job = run(
            "jobs",
            "submit",
            "--lease",
            lease,
            "--provisioner",
            "simulated",
            "--id",
            "k1",
            "-o",
            "json",
            "--",
            "true",
        )
        assert job["id"] == "k1"
        assert job["state"] == "pending"
        assert job["workload"]["command"] == ["true"]
        run(
            "jobs", "submit", "--lease", lease, "--provisioner", "simulated", "--id", "k2", "--", "echo", "hi"
        )
        listed = run("jobs", "list", "-o", "json")
        assert [j["id"] for j in listed] == ["k2", "k1"]
        pending = run("jobs", "list", "--state", "pending", "--lease", lease, "-o", "json")
        assert [j["id"] for j in pending] == ["k2", "k1"]
        assert run("jobs", "list", "-o", "id").split() == ["k2", "k1"]
        assert "k1" in run("jobs", "list")
        assert run("jobs", "show", "k1", "-o", "json")["lease_id"] == lease
        assert "pending" in run("jobs", "show", "k1")
        assert run("jobs", "cancel", "k1", "-o", "json")["state"] == "canceled"
        assert "canceled by request" in run("jobs", "logs", "k1")
        beta = ("--url", url, "--token", token(api, Role.USER, "beta"))
        missing = runner.invoke(cli, ["jobs", "show", "k1", *beta])
        assert missing.exit_code == 1
        assert "not_found" in missing.output
        bad = runner.invoke(cli, ["jobs", "submit", "--lease", lease, "--provisioner", "nope", *alpha, "x"])
        assert bad.exit_code == 2
