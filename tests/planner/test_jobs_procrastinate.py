"""Planner scale-out with procrastinate on PostgreSQL (services/planner/distributed.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from conftest import PG_URL, require_postgres, reset_postgres
from planner_support import fast_settings, make_lease, spec
from slotbroker.services.planner.distributed import Distributed, conninfo, distributed_planner
from slotbroker.services.planner.provisioners.simulated import SimulatedProvisioner
from slotbroker.store import migrate, tables
from slotbroker.store.db import Database
from slotbroker.store.unit_of_work import UnitOfWork

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg() -> Iterator[Database]:
    """procrastinate runs on PostgreSQL only: a migrated database in this process's test schema."""
    require_postgres()
    reset_postgres()
    db = Database(PG_URL)
    migrate.upgrade(db.engine)
    Distributed(db.url).apply_schema()
    yield db
    db.dispose()


def procrastinate_jobs(db: Database) -> list[str]:
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT args->>'job_id' FROM procrastinate_jobs ORDER BY id")).scalars()
        return [str(r) for r in rows]


def test_conninfo() -> None:
    assert conninfo("postgresql+psycopg://u:p@h:5/d?options=x").startswith("postgresql://u:p@h:5/d")
    with pytest.raises(ValueError, match="PostgreSQL"):
        conninfo("sqlite:///x.db")


def test_defer_commits_with_the_state_change(pg: Database) -> None:
    planner, _ = distributed_planner(
        pg, settings=fast_settings(), provisioners={"simulated": SimulatedProvisioner()}
    )
    lease = make_lease(pg, project="alpha")
    planner.create(spec(lease, job_id="a"))
    assert procrastinate_jobs(pg) == ["a"]
    # a transaction that defers and then fails leaves neither the change nor the task (no phantom)
    assert planner.on_enqueue is not None
    job = planner.get("a")
    hook = planner.on_enqueue

    def defer_then_fail() -> None:
        with UnitOfWork(pg) as uow:
            snap = uow.jobs.get(job.id, lock=True)
            assert snap is not None
            hook(uow, snap)
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        defer_then_fail()
    assert procrastinate_jobs(pg) == ["a"]
    planner.cancel("a")  # pending and untouched: canceled at once, no step left, nothing deferred
    assert procrastinate_jobs(pg) == ["a"]
    assert planner.get("a").state == "canceled"


def test_two_worker_processes_finish_every_job_once(pg: Database, tmp_path: Path) -> None:
    planner, dist = distributed_planner(pg, provisioners={"simulated": SimulatedProvisioner()})
    lease = make_lease(pg, project="alpha")
    n = 40
    env = {**os.environ, "SLOTBROKER_DATABASE_URL": PG_URL, "SLOTBROKER_PLANNER_CLAIM_TTL_S": "10"}
    cmd = [
        str(Path(sys.executable).parent / "slotbroker"),
        "admin",
        "worker",
        "--procrastinate",
        "--workers",
        "8",
    ]
    procs = [
        subprocess.Popen(
            cmd, env=env, stdout=(tmp_path / f"w{i}.log").open("w"), stderr=subprocess.STDOUT, cwd=tmp_path
        )
        for i in range(2)
    ]
    try:
        ids = [planner.create(spec(lease, job_id=f"j{i}")).id for i in range(n)]
        deadline = time.monotonic() + 60
        while True:
            with UnitOfWork(pg, readonly=True) as uow:
                left = uow.session.execute(
                    select(func.count()).where(tables.jobs.c.step.is_not(None))
                ).scalar_one()
            if left == 0:
                break
            for p in procs:
                assert p.poll() is None, (tmp_path / "w0.log").read_text() + (tmp_path / "w1.log").read_text()
            assert time.monotonic() < deadline, f"{left} jobs unfinished"
            time.sleep(0.2)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
    transitions = tables.job_transitions
    with UnitOfWork(pg, readonly=True) as uow:
        rows = uow.session.execute(
            select(tables.jobs.c.id, tables.jobs.c.state, tables.jobs.c.releases)
        ).all()
        twice = uow.session.execute(
            select(transitions.c.job_seq, transitions.c.to_state)
            .group_by(transitions.c.job_seq, transitions.c.to_state)
            .having(func.count() > 1)
        ).all()
    assert sorted(r.id for r in rows) == sorted(ids)  # none lost
    assert {r.state for r in rows} == {"succeeded"}
    assert all(r.releases == 1 for r in rows)  # none released twice
    assert twice == []
    assert dist.deferred >= n  # one defer per create at least, in the test process
