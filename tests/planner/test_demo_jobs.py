"""``slotbroker demo`` submits a few jobs for the local provisioner in a one-hour lease on a demo host;
a planner pool (the served app's, here one started by the test) runs them to their final states."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from typer.testing import CliRunner

from planner_support import fast_settings, run, wait_state
from slotbroker.cli.main import app
from slotbroker.services.planner import Planner, WorkerPool
from slotbroker.store.db import Database

DEMO_JOBS = ("demo-hello", "demo-uname", "demo-exit-3")
TERMINAL = ("succeeded", "failed", "canceled", "expired")


def test_demo_submits_local_jobs_that_a_pool_runs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/demo.db"
    runner = CliRunner()
    first = runner.invoke(app, ["demo", "--load-only", "--days", "2", "--database-url", url])
    assert first.exit_code == 0, first.output
    for job_id in DEMO_JOBS:
        assert job_id in first.output
    assert "/v1/jobs" in first.output

    db = Database(url)
    planner = Planner(db, settings=replace(fast_settings(workers=4), enabled=("local",)))  # as demo serves
    jobs = {job_id: planner.get(job_id) for job_id in DEMO_JOBS}
    assert {j.state for j in jobs.values()} == {"pending"}
    assert {j.provisioner for j in jobs.values()} == {"local"}
    assert {j.project for j in jobs.values()} == {"demo"}
    assert len({j.lease_id for j in jobs.values()}) == 1

    # a second run keeps the jobs and adds none
    again = runner.invoke(app, ["demo", "--load-only", "--days", "2", "--database-url", url])
    assert again.exit_code == 0, again.output
    assert "exist already" in again.output
    assert len(planner.list(limit=50).items) == 3

    async def drive() -> dict[str, str]:
        pool = WorkerPool(planner)
        pool.start()
        try:
            done = [await wait_state(planner, job_id, TERMINAL, timeout=30) for job_id in DEMO_JOBS]
        finally:
            await pool.stop()
        return {j.id: j.state for j in done}

    assert run(drive(), timeout=60) == {
        "demo-hello": "succeeded",
        "demo-uname": "succeeded",
        "demo-exit-3": "failed",
    }
    assert planner.get("demo-exit-3").exit_code == 3
    hello = [x.line for x in planner.logs("demo-hello") if x.stream == "run"]
    assert "hello from slotbroker" in hello
    failing = [x.line for x in planner.logs("demo-exit-3") if x.stream == "run"]
    assert "about to fail" in failing
    db.dispose()
