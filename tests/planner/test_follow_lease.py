"""Lease-aware provisioners. One that ``follows_lease`` hears of lease changes while its job waits: the
planner passes the lease's current window to ``follow`` on each poll (the Slurm provisioner moves its
reservation's end with it); others are never called, and a ``follow`` that raises does not hurt the job.
One that ``provisions_ahead`` provisions when the job is created, not at the lease's start (an advance
reservation)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar

from planner_support import NOW_S, fast_settings, make_planner, make_site, run, spec, wait_state, wait_until
from slotbroker.domain.jobs import JobSpec
from slotbroker.services.booking.claims import ClaimService
from slotbroker.services.booking.leases import LeaseService
from slotbroker.services.booking.quotas import QuotaService
from slotbroker.services.planner.provisioners.base import Provision
from slotbroker.services.planner.provisioners.simulated import SimulatedProvisioner
from slotbroker.services.planner.worker import WorkerPool
from slotbroker.store.db import Database
from slotbroker.wire.leases import CreateLease, LeaseItemSpec, UpdateLease


@dataclass
class Following(SimulatedProvisioner):
    follows_lease: ClassVar[bool] = True
    seen: list[tuple[str, int, int]] = field(default_factory=list)
    broken: bool = False

    async def follow(self, provision: Provision) -> None:
        a = provision.allocation
        self.seen.append((provision.provision_id, a.start_s, a.end_s))
        if self.broken:
            raise RuntimeError("cluster unreachable")


def at(s: int) -> datetime:
    return datetime.fromtimestamp(s, UTC)


def lease_on_a_host(db: Database, leases: LeaseService, end: int) -> str:
    host = make_site(db)["host-a"]
    item = LeaseItemSpec(provider_uuid=uuid.UUID(host), resource_class="VCPU", amount=1)
    return str(leases.create(CreateLease(start=at(NOW_S), end=at(end), items=[item]), project="alpha").id)


def test_an_extended_lease_reaches_follow_while_the_job_runs(db: Database) -> None:
    leases = LeaseService(db, ClaimService(db), QuotaService(db))
    end = NOW_S + 3600
    lease = lease_on_a_host(db, leases, end)
    sim = Following()
    sim.gate("run")
    planner = make_planner(db, {"sim": sim}, fast_settings())
    job = planner.create(spec_for(lease))

    async def scenario() -> None:
        pool = WorkerPool(planner)
        pool.start()
        await wait_state(planner, job.id, ["running"])
        await wait_until(lambda: any(e == end for _p, _s, e in sim.seen), what="follow with the old end")
        view = leases.get(lease, project=None)
        await asyncio.to_thread(
            leases.update, lease, UpdateLease(generation=view.generation, end=at(end + 600)), project=None
        )
        extended = end + 600
        await wait_until(lambda: any(e == extended for _p, _s, e in sim.seen), what="follow with the new end")
        sim.ungate("run")
        await wait_state(planner, job.id, ["succeeded"])
        await pool.stop()

    run(scenario())
    assert {p for p, _s, _e in sim.seen} == {planner.get(job.id).provision_id}


def test_a_failing_follow_only_logs_and_others_are_never_asked(db: Database) -> None:
    leases = LeaseService(db, ClaimService(db), QuotaService(db))
    lease = lease_on_a_host(db, leases, NOW_S + 3600)
    broken = Following(broken=True)
    broken.gate("run")
    planner = make_planner(db, {"sim": broken}, fast_settings())
    job = planner.create(spec_for(lease))

    async def scenario() -> None:
        pool = WorkerPool(planner)
        pool.start()
        await wait_state(planner, job.id, ["running"])
        await wait_until(lambda: len(broken.seen) >= 3, what="several follow calls")
        broken.ungate("run")
        await wait_state(planner, job.id, ["succeeded"])
        await pool.stop()

    run(scenario())
    assert SimulatedProvisioner.follows_lease is False


def spec_for(lease: str) -> JobSpec:
    return spec(lease, provisioner="sim")


@dataclass
class Ahead(SimulatedProvisioner):
    provisions_ahead: ClassVar[bool] = True


def test_a_provisioner_that_provisions_ahead_starts_before_the_lease(db: Database) -> None:
    leases = LeaseService(db, ClaimService(db), QuotaService(db))
    host = make_site(db)["host-a"]
    item = LeaseItemSpec(provider_uuid=uuid.UUID(host), resource_class="VCPU", amount=1)
    body = CreateLease(start=at(NOW_S + 3600), end=at(NOW_S + 7200), items=[item])
    lease = str(leases.create(body, project="alpha").id)
    ahead, plain = Ahead(), SimulatedProvisioner()
    ahead.gate("run")
    planner = make_planner(db, {"ahead": ahead, "simulated": plain}, fast_settings())
    early = planner.create(spec(lease, provisioner="ahead"))
    waits = planner.create(spec(lease, provisioner="simulated"))

    async def scenario() -> None:
        pool = WorkerPool(planner)
        pool.start()
        await wait_state(planner, early.id, ["running"])
        await asyncio.sleep(0.2)
        assert planner.get(waits.id).state == "pending"  # due at the lease start, an hour away
        ahead.ungate("run")
        await wait_state(planner, early.id, ["succeeded"])
        await pool.stop()

    run(scenario())
    assert plain.calls["provision"] == 0
    assert ahead.calls["provision"] == 1
