"""Queue policies (fair share, priority), no head-of-line blocking, keyset listing, retention."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from planner_support import fast_settings, make_lease, make_planner, run, spec, wait_state
from slotbroker.domain.errors import ValidationFailed
from slotbroker.services.planner.provisioners.simulated import SimulatedConfig, SimulatedProvisioner
from slotbroker.services.planner.service import Planner
from slotbroker.services.planner.settings import ProvisionerPolicy, RetryPolicy
from slotbroker.services.planner.worker import WorkerPool
from slotbroker.store.db import Database
from slotbroker.store.models import JobLogRow, JobRow, JobTransitionRow
from slotbroker.store.unit_of_work import UnitOfWork


def _start_order(sim: SimulatedProvisioner) -> list[str]:
    """Job ids in the order their first provision was made."""
    return [sim.key_of(pid).split("#")[0] for kind, pid in sim.events if kind == "provision"]


@pytest.mark.parametrize("policy", ["fair", "fifo"])
def test_fair_share_does_not_starve_a_small_project(db: Database, policy: str) -> None:
    sim = SimulatedProvisioner()
    planner = make_planner(db, {"simulated": sim}, fast_settings(workers=1, queue_policy=policy))
    big, small = make_lease(db, project="big"), make_lease(db, project="small")
    for i in range(12):
        planner.create(spec(big, job_id=f"big-{i}"))
    for i in range(3):
        planner.create(spec(small, job_id=f"small-{i}"))

    async def scenario() -> None:
        pool = WorkerPool(planner)
        pool.start()
        for i in range(3):
            await wait_state(planner, f"small-{i}", ["succeeded"])
        await wait_state(planner, "big-11", ["succeeded"])
        await pool.stop()

    run(scenario())
    order = _start_order(sim)
    positions = [order.index(f"small-{i}") for i in range(3)]
    if policy == "fair":
        assert max(positions) < 6, order  # interleaved with the big project
    else:
        assert positions == [12, 13, 14], order  # FIFO: behind everything queued before


def test_priority_policy_runs_urgent_first(db: Database) -> None:
    sim = SimulatedProvisioner()
    planner = make_planner(db, {"simulated": sim}, fast_settings(workers=1, queue_policy="priority"))
    lease = make_lease(db)
    for i in range(4):
        planner.create(spec(lease, job_id=f"low-{i}"))
    planner.create(spec(lease, job_id="urgent", priority=10))

    async def scenario() -> None:
        pool = WorkerPool(planner)
        pool.start()
        await wait_state(planner, "low-3", ["succeeded"])
        await pool.stop()

    run(scenario())
    assert _start_order(sim)[0] == "urgent"


def test_no_head_of_line_blocking_behind_a_saturated_provisioner(db: Database) -> None:
    scarce, plenty = SimulatedProvisioner(), SimulatedProvisioner()
    scarce_runs = scarce.gate("run")
    base = fast_settings(workers=4)
    limited = ProvisionerPolicy(
        readiness_timeout_s=5.0, poll_interval_s=0.01, max_active=1, retry=RetryPolicy(backoff_s=0.01)
    )
    settings = fast_settings(workers=4, policies={"scarce": limited, "plenty": base.default_policy})
    planner = make_planner(db, {"scarce": scarce, "plenty": plenty}, settings)
    lease = make_lease(db)
    for i in range(3):
        planner.create(spec(lease, provisioner="scarce", job_id=f"scarce-{i}"))
    for i in range(3):
        planner.create(spec(lease, provisioner="plenty", job_id=f"plenty-{i}"))

    async def scenario() -> None:
        pool = WorkerPool(planner)
        pool.start()
        await wait_state(planner, "scarce-0", ["running"])
        for i in range(3):  # the jobs queued behind the scarce ones are not blocked by them
            await wait_state(planner, f"plenty-{i}", ["succeeded"])
        assert [planner.get(f"scarce-{i}").state for i in (1, 2)] == ["pending", "pending"]
        assert scarce.created == 1  # the limit held
        scarce_runs.open()
        for i in range(3):
            await wait_state(planner, f"scarce-{i}", ["succeeded"])
        await pool.stop()

    run(scenario())
    assert scarce.double_released() == 0
    assert scarce.unreleased() == []


def test_keyset_listing_is_stable_while_jobs_are_added(db: Database) -> None:
    planner = make_planner(db, {"simulated": SimulatedProvisioner()})
    a, b = make_lease(db, project="alpha"), make_lease(db, project="beta")
    original = [planner.create(spec(a if i % 2 else b, job_id=f"j-{i:02d}")).id for i in range(25)]
    seen: list[str] = []
    page = planner.list(limit=10)
    seen += [j.id for j in page.items]
    extra = 0
    while page.next_cursor:
        for _ in range(3):  # new jobs arrive between pages
            planner.create(spec(a, job_id=f"new-{extra}"))
            extra += 1
        page = planner.list(limit=10, cursor=page.next_cursor)
        seen += [j.id for j in page.items]
    assert seen == list(reversed(original))  # newest first; nothing repeated or skipped

    planner.cancel("j-01")
    assert [j.id for j in planner.list(states=["canceled"]).items] == ["j-01"]
    alpha = planner.list(project="alpha", limit=100).items
    assert {j.project for j in alpha} == {"alpha"}
    assert len(alpha) == 12 + extra
    assert {j.id for j in planner.list(lease_id=b, limit=100).items} == {
        f"j-{i:02d}" for i in range(0, 25, 2)
    }
    with pytest.raises(ValidationFailed):
        planner.list(cursor="garbage!")
    with pytest.raises(ValidationFailed):
        planner.list(states=["nope"])


def test_retention_purges_terminal_jobs_with_their_logs(db: Database) -> None:
    planner = make_planner(db, {"simulated": SimulatedProvisioner()})
    lease = make_lease(db)
    old = planner.create(spec(lease, job_id="old"))
    planner.cancel(old.id)
    finished = planner.get(old.id).finished_at
    assert finished is not None
    planner.create(spec(lease, job_id="live"))
    t = int(finished.timestamp() * 1000)
    ttl = int(planner.settings.retention_s * 1000)
    assert planner.purge(now_ms=t + ttl - 1) == 0
    assert planner.purge(now_ms=t + ttl + 10) == 1
    assert [j.id for j in planner.list().items] == ["live"]
    with UnitOfWork(db, readonly=True) as uow:
        s = uow.session
        assert s.scalar(select(func.count()).select_from(JobRow)) == 1
        live_seq = s.scalar(select(JobRow.seq))
        assert s.scalar(select(func.count()).select_from(JobLogRow).where(JobLogRow.job_seq != live_seq)) == 0
        others = (
            select(func.count()).select_from(JobTransitionRow).where(JobTransitionRow.job_seq != live_seq)
        )
        assert s.scalar(others) == 0


def test_pool_stop_gives_back_claims(db: Database) -> None:
    sim = SimulatedProvisioner()
    gate = sim.gate("provision")
    planner = make_planner(db, {"simulated": sim}, fast_settings(claim_ttl_s=60.0))
    job = planner.create(spec(make_lease(db)))

    async def scenario() -> None:
        pool = WorkerPool(planner)
        pool.start()
        await asyncio.wait_for(gate.entered.wait(), 10)
        gate.open()
        await wait_state(planner, job.id, ["succeeded"])
        await pool.stop()

    run(scenario())
    with UnitOfWork(db, readonly=True) as uow:
        assert (
            uow.session.scalar(select(func.count()).select_from(JobRow).where(JobRow.claimed_by.is_not(None)))
            == 0
        )


def test_external_queue_seam_enqueues_in_the_same_transaction(db: Database) -> None:
    """What the procrastinate layer will do: ``on_enqueue`` runs inside the transaction that gives a job
    its next step (it would defer a task there); each task calls ``run_job``."""
    sim = SimulatedProvisioner(SimulatedConfig(ready_after_s=0.05))  # a poll: one step not chained
    queue: list[tuple[str, str | None]] = []
    planner = Planner(
        db,
        settings=fast_settings(),
        provisioners={"simulated": sim},
        on_enqueue=lambda conn, job: queue.append((job.id, job.step)),
    )
    job = planner.create(spec(make_lease(db), job_id="ext-1"))
    assert queue == [("ext-1", "provision")]

    async def worker() -> None:
        ran = 0
        while planner.get(job.id).state != "succeeded":
            if queue:
                job_id, _ = queue.pop(0)
                while not await planner.run_job(job_id, worker="external-1"):
                    await asyncio.sleep(0.01)  # not due yet (a poll interval): the task retries later
                ran += 1
            else:
                await asyncio.sleep(0.01)
        assert ran >= 2

    run(worker())
    assert run(planner.run_job(job.id, worker="external-1")) is False  # finished: nothing to do
    assert sim.double_released() == 0
    assert sim.unreleased() == []


def test_a_worker_leaves_jobs_of_provisioners_it_does_not_have(db: Database) -> None:
    sim, other = SimulatedProvisioner(), SimulatedProvisioner()
    api = make_planner(db, {"simulated": sim, "other": other})
    lease = make_lease(db)
    job = api.create(spec(lease, provisioner="other", job_id="needs-other"))
    mine = api.create(spec(lease, job_id="needs-simulated"))
    partial = make_planner(db, {"simulated": sim})  # a worker without the "other" plugin

    async def scenario() -> None:
        pool = WorkerPool(partial)
        pool.start()
        await wait_state(partial, mine.id, ["succeeded"])
        await asyncio.sleep(0.1)
        await pool.stop()
        assert api.get(job.id).state == "pending"
        full = WorkerPool(api)
        full.start()
        await wait_state(api, job.id, ["succeeded"])
        await full.stop()

    run(scenario())
    assert other.created == 1
