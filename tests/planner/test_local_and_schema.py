"""The local provisioner runs real processes; the ORM models match migration 0004."""

from __future__ import annotations

import asyncio
import time

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from planner_support import make_lease, make_planner, run, spec, wait_state
from slotbroker.domain.jobs import Workload
from slotbroker.services.planner.provisioners.base import load
from slotbroker.services.planner.provisioners.local import LocalProvisioner
from slotbroker.services.planner.provisioners.simulated import SimulatedProvisioner
from slotbroker.services.planner.worker import WorkerPool
from slotbroker.store.db import Database
from slotbroker.store.models import Base

JOB_TABLES = {"jobs", "job_transitions", "job_logs"}


def test_local_run_exit_code_and_logs(db: Database) -> None:
    local = LocalProvisioner(max_log_lines=50, max_log_line_bytes=200)
    planner = make_planner(db, {"local": local})
    workload = Workload(command=("sh", "-c", "echo hi; exit 3"))
    job = planner.create(spec(make_lease(db), provisioner="local", workload=workload))

    async def scenario() -> None:
        pool = WorkerPool(planner)
        pool.start()
        done = await wait_state(planner, job.id, ["failed", "succeeded"])
        await pool.stop()
        assert done.state == "failed"
        assert done.exit_code == 3
        assert done.error == "exit code 3"

    run(scenario())
    assert [ln.line for ln in planner.logs(job.id) if ln.stream == "run"] == ["hi"]
    assert local._runs == {}
    assert local._provisions == {}  # released: nothing kept in memory


def test_local_cancel_stops_the_process(db: Database) -> None:
    local = LocalProvisioner(grace_s=2.0)
    planner = make_planner(db, {"local": local})
    workload = Workload(command=("sh", "-c", "echo started; exec sleep 30"))
    job = planner.create(spec(make_lease(db), provisioner="local", workload=workload))

    async def scenario() -> None:
        pool = WorkerPool(planner)
        pool.start()
        await wait_state(planner, job.id, ["running"])
        t0 = time.monotonic()
        await asyncio.to_thread(planner.cancel, job.id)
        await wait_state(planner, job.id, ["canceled"])
        assert time.monotonic() - t0 < 5
        await pool.stop()

    run(scenario())


def test_entry_points_register_the_builtin_provisioners() -> None:
    assert isinstance(load("local"), LocalProvisioner)
    assert isinstance(load("simulated"), SimulatedProvisioner)


def test_models_match_migrations(db: Database) -> None:
    """Alembic autogenerate finds no difference between the job models and migration 0004."""

    def include_name(name: str | None, type_: str, parent_names: object) -> bool:
        return type_ != "table" or name in JOB_TABLES

    def include_object(obj: object, name: str | None, type_: str, reflected: bool, other: object) -> bool:
        if type_ == "table":
            return name in JOB_TABLES
        table = getattr(obj, "table", None)
        return table is None or getattr(table, "name", None) in JOB_TABLES

    opts = {"include_name": include_name, "include_object": include_object, "compare_type": True}
    with db.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts=opts), Base.metadata)
    assert diffs == []
