"""Planner benchmark: N jobs through the whole pipeline (create -> provision -> submit -> run -> release
-> succeeded) with the simulated provisioner at zero latency, on the embedded asyncio pool, on SQLite
(a temporary file) and on PostgreSQL (a schema of its own, dropped afterwards).

Prints ONE JSON object. ``python bench/planner.py [--jobs N] [--workers W] [--skip-postgres]``.
``lost`` counts jobs that did not reach a final state (or vanished); ``double_released`` counts
provisions released more than once; both must be 0 (counted over every mode).

``jobs_per_s_2_workers``: the procrastinate scale-out on PostgreSQL: two ``slotbroker worker
--procrastinate`` PROCESSES (loopback, a schema of their own, stopped with SIGTERM at the end, killed if
they hang) run the jobs this process creates (each create defers a procrastinate task in its
transaction). Their simulated provisioners live in the worker processes, so releases are counted from
the job rows (``releases`` against ``attempt``) and from duplicated state changes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text

from slotbroker.domain.jobs import JobSpec, Workload
from slotbroker.services.planner.provisioners.simulated import SimulatedProvisioner
from slotbroker.services.planner.service import Planner
from slotbroker.services.planner.settings import PlannerSettings, ProvisionerPolicy, RetryPolicy
from slotbroker.services.planner.worker import WorkerPool
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
    pool = WorkerPool(planner)
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


def outcome(db: Database, jobs: int) -> dict[str, Any]:
    """Final states, lost jobs and over-released provisions, read from the job rows."""
    with UnitOfWork(db, readonly=True) as uow:
        s = uow.session
        by_state = dict(s.execute(select(JobRow.state, func.count()).group_by(JobRow.state)).all())
        total = int(s.scalar(select(func.count()).select_from(JobRow)) or 0)
        over_released = int(
            s.scalar(select(func.count()).select_from(JobRow).where(JobRow.releases > JobRow.attempt)) or 0
        )
        unreleased = int(
            s.scalar(select(func.count()).select_from(JobRow).where(JobRow.releases < JobRow.attempt)) or 0
        )
    finished = sum(
        int(n) for st, n in by_state.items() if st in ("succeeded", "failed", "canceled", "expired")
    )
    return {
        "states": {str(k): int(v) for k, v in by_state.items()},
        "lost": (jobs - total) + (total - finished),
        "double_released": over_released,
        "unreleased_provisions": unreleased,
    }


def start_worker(url: str, concurrency: int, log_path: Path) -> subprocess.Popen[bytes]:
    """``slotbroker worker --procrastinate`` in a process of its own (the same venv), on ``url``."""
    env = {
        **os.environ,
        "SLOTBROKER_DATABASE_URL": url,
        "SLOTBROKER_PLANNER_CLAIM_TTL_S": "10",
        "SLOTBROKER_PLANNER_PROVISIONERS": json.dumps(
            {
                "simulated": {
                    "readiness_timeout_s": 60.0,
                    "poll_interval_s": 0.01,
                    "retry": {"backoff_s": 0.01},
                }
            }
        ),
    }
    exe = Path(sys.executable).parent / "slotbroker"
    cmd = [str(exe), "worker", "--procrastinate", "--no-apply-schema", "--workers", str(concurrency)]
    with log_path.open("wb") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> list[int | None]:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    codes: list[int | None] = []
    for p in procs:
        try:
            codes.append(p.wait(timeout=20))
        except subprocess.TimeoutExpired:
            p.kill()
            codes.append(p.wait(timeout=5))
    return codes


def push_two_workers(db: Database, url: str, jobs: int, concurrency: int, tmp: Path) -> dict[str, Any]:
    """N jobs created here (4 threads), run by two procrastinate worker processes."""
    from slotbroker.services.planner.distributed import Distributed, distributed_planner

    Distributed(db.url).apply_schema()
    planner, dist = distributed_planner(
        db, settings=settings(concurrency), provisioners={"simulated": SimulatedProvisioner()}
    )
    leases = [make_lease(db, f"project-{i}") for i in range(4)]
    logs = [tmp / f"worker-{i}.log" for i in range(2)]
    procs = [start_worker(url, concurrency, logs[i]) for i in range(2)]
    try:
        # both workers up (they print their id once their database is open) before the clock starts
        deadline = time.monotonic() + 60
        while not all("planner worker" in lp.read_text(errors="replace") for lp in logs):
            if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                raise RuntimeError(
                    "a worker did not start: " + " | ".join(lp.read_text()[-500:] for lp in logs)
                )
            time.sleep(0.05)
        time.sleep(1.0)  # reconcile + procrastinate's LISTEN
        t0 = time.perf_counter()

        def create_some(part: int) -> None:
            for i in range(part, jobs, CREATORS):
                planner.create(
                    JobSpec(leases[i % 4], "simulated", Workload(command=("true",)), job_id=f"bench-{i}")
                )

        with ThreadPoolExecutor(CREATORS) as ex:
            list(ex.map(create_some, range(CREATORS)))
        created = time.perf_counter() - t0

        def unfinished() -> int:
            with UnitOfWork(db, readonly=True) as uow:
                return int(
                    uow.session.scalar(
                        select(func.count()).select_from(JobRow).where(JobRow.step.is_not(None))
                    )
                    or 0
                )

        deadline = time.monotonic() + max(60.0, jobs / 20)
        while unfinished() and time.monotonic() < deadline:
            if any(p.poll() is not None for p in procs):
                break  # a worker died: what is left is counted as lost
            time.sleep(0.02)
        elapsed = time.perf_counter() - t0
    finally:
        exit_codes = stop_workers(procs)
    return {
        "jobs": jobs,
        "worker_processes": 2,
        "concurrency_per_worker": concurrency,
        "seconds": round(elapsed, 3),
        "create_seconds": round(created, 3),
        "jobs_per_s": round(jobs / elapsed, 1),
        **outcome(db, jobs),
        "deferred": dist.deferred,
        "worker_exit_codes": exit_codes,
    }


def on_postgres_two_workers(jobs: int, concurrency: int) -> dict[str, Any]:
    schema = f"bench_planner_pc_{os.getpid()}"
    admin = create_engine(PG_BASE)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in PG_BASE else "?"
    url = f"{PG_BASE}{sep}options=-csearch_path%3D{schema}"  # every connection, in every process
    db = Database(url)
    try:
        migrate.upgrade(db.engine)
        with tempfile.TemporaryDirectory() as tmp:
            return push_two_workers(db, url, jobs, concurrency, Path(tmp))
    finally:
        db.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


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
    parser.add_argument(
        "--pc-concurrency", type=int, default=16, help="procrastinate concurrency of each worker process"
    )
    args = parser.parse_args()
    runs: dict[str, dict[str, Any]] = {"sqlite": on_sqlite(args.jobs, args.workers)}
    if not args.skip_postgres:
        try:
            runs["postgres"] = on_postgres(args.jobs, args.workers)
        except Exception as exc:  # no PostgreSQL here: say so instead of failing the SQLite numbers
            runs["postgres"] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}
        try:
            runs["postgres_2_workers"] = on_postgres_two_workers(args.jobs, args.pc_concurrency)
        except Exception as exc:
            runs["postgres_2_workers"] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}
    embedded = {k: r for k, r in runs.items() if k in ("sqlite", "postgres")}
    rates = [r["jobs_per_s"] for r in embedded.values() if "jobs_per_s" in r]
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
        "jobs_per_s_2_workers": runs.get("postgres_2_workers", {}).get("jobs_per_s"),
        "concurrency_per_worker": args.pc_concurrency,
        "runs": runs,
    }
    print(json.dumps(out, indent=2, sort_keys=False))


if __name__ == "__main__":
    main()
