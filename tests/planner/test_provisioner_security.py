"""Provisioners are enabled by configuration and gated by role; a local run sees none of the server's
environment and works in a scratch directory of its own (issue 10, item 1)."""

from __future__ import annotations

import asyncio
import os
import pwd
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text
from typer.testing import CliRunner

from conftest import IN_CI
from planner_support import make_lease, make_planner, run, spec, wait_state
from slotbroker.api.app import create_app
from slotbroker.cli.main import app as cli
from slotbroker.config import Settings
from slotbroker.domain.jobs import Workload
from slotbroker.services.access.tokens import Role, TokenService
from slotbroker.services.planner import Planner, PlannerSettings, WorkerPool
from slotbroker.services.planner.provisioners.base import Allocation, Provision
from slotbroker.services.planner.provisioners.local import LocalProvisioner
from slotbroker.services.planner.settings import format_roles, parse_roles
from slotbroker.store.db import Database

TOPOLOGY: dict[str, Any] = {
    "providers": [
        {
            "name": "S1",
            "kind": "site",
            "children": [{"name": "h1", "kind": "host", "inventories": {"VCPU": 8, "MEMORY_MB": 16384}}],
        }
    ]
}
WRITES = ("offer_sets", "offers", "consumers", "allocations", "jobs", "job_transitions")
PLANTED = "SLOTBROKER_TEST_PLANTED_SECRET"


def counts(db: Database) -> dict[str, int]:
    with db.engine.connect() as conn:
        return {t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in WRITES}


@pytest.fixture
def broker(db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, Database]]:
    """The app as ``serve`` builds it, with ``local`` turned on by configuration (no pool: nothing runs)."""
    monkeypatch.setenv("SLOTBROKER_PROVISIONERS", "simulated,local")
    monkeypatch.delenv("SLOTBROKER_PROVISIONER_ROLES", raising=False)
    settings = Settings(
        database_url=db.url,
        migrate_on_start=False,
        rate_per_s=10_000,
        rate_burst=10_000,
        event_loop_interval_s=0,
        planner_workers=0,
    )
    with TestClient(create_app(settings, db=db)) as client:
        yield client, db


def quiet(url: str) -> Settings:
    """Settings from the environment, with the pool and the lease event loop off."""
    return Settings(database_url=url, migrate_on_start=False, event_loop_interval_s=0, planner_workers=0)


def token(db: Database, role: Role, project: str = "science") -> dict[str, str]:
    secret = TokenService(db).create(project=project, role=role, name=f"t-{role.value}")
    return {"Authorization": f"Bearer {secret}"}


def asap(provisioner: str = "local") -> dict[str, Any]:
    now = datetime.now(UTC)
    request = {
        "components": [{"name": "c", "resources": {"VCPU": 1}}],
        "earliest_start": now.isoformat(),
        "latest_end": (now + timedelta(hours=6)).isoformat(),
        "duration": "PT1H",
    }
    return {
        "provisioner": provisioner,
        "workload": {"command": ["sh", "-c", "id -un; env"]},
        "offer_set": {"request": request, "strategies": ["earliest"], "max_offers": 2},
    }


@pytest.mark.parametrize("target", ["lease", "offer_set"])
def test_a_user_cannot_run_local_and_nothing_is_written(
    broker: tuple[TestClient, Database], target: str
) -> None:
    client, db = broker
    assert client.post("/v1/topology", json=TOPOLOGY, headers=token(db, Role.ADMIN)).status_code == 200
    if target == "lease":
        body = {**asap(), "lease_id": make_lease(db, project="science")}
        del body["offer_set"]
    else:
        body = asap()
    before = counts(db)
    r = client.post("/v1/jobs", json=body, headers=token(db, Role.USER))
    assert r.status_code == 403, r.text
    problem = r.json()
    assert problem["code"] == "forbidden"
    assert [e["pointer"] for e in problem["errors"]] == ["/provisioner"]
    assert "operator" in problem["errors"][0]["detail"]
    assert counts(db) == before
    # the same request with the simulated provisioner goes through (the refusal is about `local`)
    ok = client.post("/v1/jobs", json={**body, "provisioner": "simulated"}, headers=token(db, Role.USER))
    assert ok.status_code == 201, ok.text


@pytest.mark.parametrize(("role", "status"), [(Role.OPERATOR, 201), (Role.ADMIN, 201)])
def test_operators_and_admins_may_run_local(
    broker: tuple[TestClient, Database], role: Role, status: int
) -> None:
    client, db = broker
    body = {**asap(), "lease_id": make_lease(db, project="science")}
    del body["offer_set"]
    r = client.post("/v1/jobs", json=body, headers=token(db, role))
    assert r.status_code == status, r.text


def test_the_role_a_provisioner_needs_is_configurable(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLOTBROKER_PROVISIONERS", "simulated,local")
    monkeypatch.setenv("SLOTBROKER_PROVISIONER_ROLES", "local=admin, simulated=operator")
    settings = Settings(
        database_url=db.url, migrate_on_start=False, event_loop_interval_s=0, planner_workers=0
    )
    with TestClient(create_app(settings, db=db)) as client:
        lease = make_lease(db, project="science")
        for provisioner, role, status in [
            ("local", Role.OPERATOR, 403),
            ("local", Role.ADMIN, 201),
            ("simulated", Role.USER, 403),
            ("simulated", Role.OPERATOR, 201),
        ]:
            body = {"lease_id": lease, "provisioner": provisioner, "workload": {"command": ["true"]}}
            r = client.post("/v1/jobs", json=body, headers=token(db, role))
            assert r.status_code == status, (provisioner, role, r.text)
            if status == 403:
                assert r.json()["errors"][0]["pointer"] == "/provisioner"


def test_a_disabled_provisioner_is_422_listing_the_enabled_ones(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLOTBROKER_PROVISIONERS", raising=False)  # the default: simulated only
    settings = Settings(
        database_url=db.url, migrate_on_start=False, event_loop_interval_s=0, planner_workers=0
    )
    with TestClient(create_app(settings, db=db)) as client:
        before = counts(db)
        for role in (Role.USER, Role.ADMIN):
            r = client.post("/v1/jobs", json=asap(), headers=token(db, role))
            assert r.status_code == 422, r.text
            errors = r.json()["errors"]
            assert [e["pointer"] for e in errors] == ["/provisioner"]
            assert errors[0]["detail"] == "one of: simulated"
        assert counts(db) == before


@given(st.dictionaries(st.from_regex(r"[a-z][a-z0-9_-]{0,20}", fullmatch=True), st.sampled_from(list(Role))))
def test_provisioner_roles_round_trip(roles: dict[str, Role]) -> None:
    assert parse_roles(format_roles(roles)) == roles


@pytest.mark.parametrize("raw", ["local", "local=root", "=user", "local=user,local=admin"])
def test_bad_provisioner_roles_are_refused_at_start(raw: str) -> None:
    with pytest.raises(ValueError, match="SLOTBROKER_PROVISIONER_ROLES"):
        parse_roles(raw)


def test_enabling_a_provisioner_that_is_not_installed_fails_at_start(db: Database) -> None:
    with pytest.raises(LookupError, match="kubernetes"):
        Planner(db, settings=PlannerSettings(enabled=("simulated", "kubernetes")))


# -- the local provisioner's environment --------------------------------------------------------------------
def test_a_local_run_sees_only_its_allow_listed_environment(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PLANTED, "do-not-leak")
    monkeypatch.setenv("SLOTBROKER_DATABASE_URL", "postgresql://broker:s3cret@db/prod")
    local = LocalProvisioner(max_log_lines=200, max_log_line_bytes=400)
    planner = make_planner(db, {"local": local})
    workload = Workload(command=("sh", "-c", "env; echo cwd=$(pwd -P)"), env={"MINE": "yes"})
    lease = make_lease(db)
    job = planner.create(spec(lease, provisioner="local", workload=workload))

    async def scenario() -> None:
        pool = WorkerPool(planner)
        pool.start()
        done = await wait_state(planner, job.id, ["failed", "succeeded"])
        await pool.stop()
        assert done.state == "succeeded", done

    run(scenario())
    lines = [ln.line for ln in planner.logs(job.id) if ln.stream == "run"]
    env = dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("cwd="))
    assert PLANTED not in env
    assert "SLOTBROKER_DATABASE_URL" not in env
    assert "s3cret" not in "\n".join(lines)
    assert env["MINE"] == "yes"
    assert env["SLOTBROKER_JOB_ID"] == job.id
    assert env["SLOTBROKER_LEASE_ID"] == lease
    assert env["PATH"]
    allowed = {"PATH", "LANG", "HOME", "MINE", "SLOTBROKER_JOB_ID", "SLOTBROKER_LEASE_ID"}
    shell_own = {"PWD", "SHLVL", "_", "OLDPWD"}  # set by sh itself
    assert set(env) - shell_own <= allowed
    cwd = next(line.removeprefix("cwd=") for line in lines if line.startswith("cwd="))
    assert cwd == env["HOME"]
    assert cwd != os.getcwd()
    assert Path(cwd).parent == Path(tempfile.gettempdir()).resolve()
    assert not Path(cwd).exists()  # the scratch directory went with the provision's release


async def _run_once(local: LocalProvisioner, argv: tuple[str, ...]) -> list[str]:
    allocation = Allocation("lease-1", "p", 0, 60, ())
    pid = await local.provision(allocation, "job-1#1")
    workload = Workload(command=argv[:1], args=argv[1:])
    run_id = await local.submit(workload, Provision(pid, allocation), "job-1")
    for _ in range(500):
        status = await local.run_status(run_id)
        if status.exit_code is not None:
            await local.release(pid)
            assert status.exit_code == 0, status
            return list(status.logs)
        await asyncio.sleep(0.01)
    raise AssertionError("the run did not finish")


@pytest.mark.skipif(
    os.geteuid() != 0 and not IN_CI,
    reason="running as another user needs root (CI runs as root and never skips this)",
)
def test_local_runs_as_the_configured_user() -> None:
    nobody = pwd.getpwnam("nobody")  # every Linux has it; a KeyError here is a broken machine, not a skip
    local = LocalProvisioner(run_as="nobody")
    out = run(_run_once(local, ("sh", "-c", "id -un; id -G; touch here && pwd -P")))
    assert out[0] == "nobody"
    assert out[1].split() == [str(nobody.pw_gid)]  # root's groups are dropped
    assert out[2].startswith(str(Path(tempfile.gettempdir()).resolve()))


def test_an_unknown_run_as_user_fails_at_start() -> None:
    with pytest.raises(ValueError, match="no-such-user-xyz"):
        LocalProvisioner(run_as="no-such-user-xyz")


# -- serve and demo ------------------------------------------------------------------------------------------
@pytest.fixture
def no_uvicorn(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    """``uvicorn.run`` replaced by a recorder of the environment the server would start with."""
    import uvicorn

    seen: list[dict[str, str]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: seen.append(dict(os.environ)))
    for name in ("SLOTBROKER_PROVISIONERS", "SLOTBROKER_PROVISIONER_ROLES", "SLOTBROKER_DATABASE_URL"):
        monkeypatch.setenv(name, "")  # recorded, so what serve sets is undone after the test
        monkeypatch.delenv(name)
    return seen


def _served_provisioners(url: str) -> set[str]:
    app: FastAPI = create_app(quiet(url))
    try:
        return set(app.state.services.planner.provisioners)
    finally:
        app.state.services.db.dispose()


def test_serve_enables_only_simulated_by_default(tmp_path: Path, no_uvicorn: list[dict[str, str]]) -> None:
    url = f"sqlite:///{tmp_path}/serve.db"
    r = CliRunner().invoke(cli, ["serve", "--database-url", url, "--create"])
    assert r.exit_code == 0, r.output
    assert len(no_uvicorn) == 1
    assert "local" not in no_uvicorn[0].get("SLOTBROKER_PROVISIONERS", "")
    assert _served_provisioners(url) == {"simulated"}
    assert "provisioners: simulated" in r.output


def test_serve_turns_provisioners_on_when_asked(tmp_path: Path, no_uvicorn: list[dict[str, str]]) -> None:
    url = f"sqlite:///{tmp_path}/serve.db"
    r = CliRunner().invoke(
        cli, ["serve", "--database-url", url, "--create", "--provisioners", "simulated,local"]
    )
    assert r.exit_code == 0, r.output
    assert no_uvicorn[0]["SLOTBROKER_PROVISIONERS"] == "simulated,local"
    assert _served_provisioners(url) == {"simulated", "local"}
    assert "local runs commands on this host" in r.output


def test_demo_enables_local_and_says_so(tmp_path: Path, no_uvicorn: list[dict[str, str]]) -> None:
    url = f"sqlite:///{tmp_path}/demo.db"
    r = CliRunner().invoke(cli, ["demo", "--days", "1", "--database-url", url])
    assert r.exit_code == 0, r.output
    assert "local" in no_uvicorn[0]["SLOTBROKER_PROVISIONERS"].split(",")
    assert _served_provisioners(url) >= {"simulated", "local"}
    assert "local provisioner is ON" in r.output


def test_serve_refuses_a_provisioner_that_is_not_installed(
    tmp_path: Path, no_uvicorn: list[dict[str, str]]
) -> None:
    url = f"sqlite:///{tmp_path}/serve.db"
    r = CliRunner().invoke(cli, ["serve", "--database-url", url, "--provisioners", "simulated,kubernetes"])
    assert r.exit_code == 2, r.output
    assert "kubernetes" in r.output
    assert no_uvicorn == []


def _on_uvloop(coro: Any) -> Any:
    """Run ``coro`` on uvloop, the event loop ``slotbroker serve`` runs the planner's pool on."""
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def test_local_runs_on_the_servers_event_loop() -> None:
    """uvloop refuses create_subprocess_exec's user/group arguments, even as None: every local job of
    ``make demo`` failed with "unexpected kwargs" until they were no longer passed."""
    out = _on_uvloop(_run_once(LocalProvisioner(), ("sh", "-c", "echo ran")))
    assert out == ["ran"]


@pytest.mark.skipif(
    os.geteuid() != 0 and not IN_CI,
    reason="running as another user needs root (CI runs as root and never skips this)",
)
def test_local_runs_as_the_configured_user_on_the_servers_event_loop() -> None:
    out = _on_uvloop(_run_once(LocalProvisioner(run_as="nobody"), ("sh", "-c", "id -un")))
    assert out == ["nobody"]
