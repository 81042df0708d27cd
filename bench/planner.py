"""Planner benchmark: N jobs through the whole pipeline (create -> provision -> submit -> run -> release
-> succeeded) with the simulated provisioner at zero latency, on the embedded asyncio pool, on SQLite
(a temporary file) and on PostgreSQL (a schema of its own, dropped afterwards).

Prints ONE JSON object. ``python bench/planner.py [--jobs N] [--workers W] [--skip-postgres]``.
``lost`` counts jobs that did not reach a final state (or vanished); ``double_released`` counts
provisions released more than once; both must be 0. The procrastinate scale-out (2 workers) comes next.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import create_engine, func, select, text

from slotbroker.domain.jobs import JobSpec, Workload
from slotbroker.services.planner.provisioners.simulated import SimulatedProvisioner
from slotbroker.services.planner.service import Planner
from slotbroker.services.planner.settings import PlannerSettings, ProvisionerPolicy, RetryPolicy
from slotbroker.store import migrate
from slotbroker.store.db import Database
from slotbroker.store.models import AllocationRow, ConsumerRow, JobRow, ProviderRow, ResourceClassRow
from slotbroker.store.unit_of_work import UnitOfWork

CREATORS = 4  # threads creating jobs
PG_BASE = os.environ.get("SLOTBROKER_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def make_lease(db: Database, project: str) -> str:
    lease_id = str(uuid.uuid4())
    now = int(time.time())
    with UnitOfWork(db) as uow:
        s = uow.session
        if s.get(ResourceClassRow, "VCPU") is None:
            s.add(ResourceClassRow(name="VCPU", kind="standard", description=""))
        host = ProviderRow(uuid=str(uuid.uuid4()), name=f"host-{lease_id[:8]}", kind="host")
        s.add(host)
        lease = ConsumerRow(
            uuid=lease_id, kind="lease", project=project, status="ACTIVE", start_s=now - 60, end_s=now + 86400
        )
        s.add(lease)
        s.flush()
        s.add(
            AllocationRow(
                consumer_id=lease.id,
                provider_id=host.id,
                resource_class="VCPU",
                amount=1,
                start_s=now - 60,
                end_s=now + 86400,
            )
        )
        uow.commit()
    return lease_id


def settings(workers: int) -> PlannerSettings:
    policy = ProvisionerPolicy(
        readiness_timeout_s=60.0, poll_interval_s=0.01, call_timeout_s=30.0, retry=RetryPolicy(backoff_s=0.01)
    )
    return PlannerSettings(
        workers=workers,
        claim_ttl_s=60.0,
        idle_poll_s=0.05,
        claim_batch=64,
        retention_s=86400.0,
        purge_interval_s=3600.0,
        max_log_lines=100,
        max_log_line_bytes=1024,
        queue_policy="fifo",
        provisioners={},
        default_policy=policy,
    )


async def push(db: Database, jobs: int, workers: int) -> dict[str, Any]:
    sim = SimulatedProvisioner()
    planner = Planner(db, settings=settings(workers), provisioners={"simulated": sim})
    leases = [make_lease(db, f"project-{i}") for i in range(4)]
    pool = planner.pool()
    task = pool.start()
    t0 = time.perf_counter()

    def create_some(part: int) -> None:  # clients submitting at once, as API replicas would
        for i in range(part, jobs, CREATORS):
            planner.create(
                JobSpec(leases[i % 4], "simulated", Workload(command=("true",)), job_id=f"bench-{i}")
            )

    def create_all() -> None:
        with ThreadPoolExecutor(CREATORS) as ex:
            list(ex.map(create_some, range(CREATORS)))

    await asyncio.to_thread(create_all)
    created = time.perf_counter() - t0

    def unfinished() -> int:
        with UnitOfWork(db, readonly=True) as uow:
            return int(
                uow.session.scalar(select(func.count()).select_from(JobRow).where(JobRow.step.is_not(None)))
                or 0
            )

    deadline = time.perf_counter() + max(60.0, jobs / 20)
    while await asyncio.to_thread(unfinished) and time.perf_counter() < deadline:
        await asyncio.sleep(0.02)
    elapsed = time.perf_counter() - t0
    await pool.stop()
    del task
    with UnitOfWork(db, readonly=True) as uow:
        s = uow.session
        by_state = dict(s.execute(select(JobRow.state, func.count()).group_by(JobRow.state)).all())
        total = int(s.scalar(select(func.count()).select_from(JobRow)) or 0)
        over_released = int(
            s.scalar(select(func.count()).select_from(JobRow).where(JobRow.releases > JobRow.attempt)) or 0
        )
    finished = sum(
        int(n) for st, n in by_state.items() if st in ("succeeded", "failed", "canceled", "expired")
    )
    return {
        "jobs": jobs,
        "seconds": round(elapsed, 3),
        "create_seconds": round(created, 3),
        "jobs_per_s": round(jobs / elapsed, 1),
        "states": {str(k): int(v) for k, v in by_state.items()},
        "lost": (jobs - total) + (total - finished),
        "double_released": sim.double_released() + over_released,
        "unreleased_provisions": len(sim.unreleased()),
        "steps_run": pool.steps_run,
        "provisioner_calls": dict(sim.calls),
    }


def on_sqlite(jobs: int, workers: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/bench.db")
        migrate.upgrade(db.engine)
        try:
            return asyncio.run(push(db, jobs, workers))
        finally:
            db.dispose()


def on_postgres(jobs: int, workers: int) -> dict[str, Any]:
    schema = f"bench_planner_{os.getpid()}"
    admin = create_engine(PG_BASE)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in PG_BASE else "?"
    db = Database(f"{PG_BASE}{sep}options=-csearch_path%3D{schema}")
    try:
        migrate.upgrade(db.engine)
        return asyncio.run(push(db, jobs, workers))
    finally:
        db.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    runs: dict[str, dict[str, Any]] = {"sqlite": on_sqlite(args.jobs, args.workers)}
    if not args.skip_postgres:
        try:
            runs["postgres"] = on_postgres(args.jobs, args.workers)
        except Exception as exc:  # no PostgreSQL here: say so instead of failing the SQLite numbers
            runs["postgres"] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}
    rates = [r["jobs_per_s"] for r in runs.values() if "jobs_per_s" in r]
    out = {
        "benchmark": "planner",
        "jobs": args.jobs,
        "workers": args.workers,
        "provisioner": "simulated, zero latency",
        "jobs_per_s_embedded": min(rates) if rates else None,
        "jobs_per_s_embedded_sqlite": runs["sqlite"].get("jobs_per_s"),
        "jobs_per_s_embedded_postgres": runs.get("postgres", {}).get("jobs_per_s"),
        "lost": sum(int(r.get("lost", 0)) for r in runs.values()),
        "double_released": sum(int(r.get("double_released", 0)) for r in runs.values()),
        "jobs_per_s_2_workers": None,
        "note": "jobs_per_s_2_workers: the procrastinate scale-out comes next (issue 5, part 2)",
        "runs": runs,
    }
    print(json.dumps(out, indent=2, sort_keys=False))


if __name__ == "__main__":
    main()
