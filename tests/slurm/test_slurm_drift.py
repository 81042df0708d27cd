"""Drift against the real cluster: a drained node and a reservation made with ``scontrol`` become booked
capacity that find-slot does not offer; the sync is idempotent, follows the cluster back, reports what
it cannot book, and deletes ``sb-*`` reservations whose lease is over."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from planner_support import book, fast_settings, make_site
from slotbroker.bootstrap import build_services
from slotbroker.cli.main import app
from slotbroker.config import Settings
from slotbroker.domain.slurm_text import parse_time
from slotbroker.services.booking.claims import ClaimService
from slotbroker.services.booking.leases import LeaseService
from slotbroker.services.booking.quotas import QuotaService
from slotbroker.services.find_slot.calendar_cache import CalendarCache
from slotbroker.services.find_slot.service import FindSlotService
from slotbroker.services.planner.provisioners.slurm import SlurmProvisioner
from slotbroker.services.planner.provisioners.slurm_config import SlurmConfig
from slotbroker.services.planner.service import Planner
from slotbroker.services.planner.slurm_drift import PeriodicSync, SlurmDriftSync, drift_job, node_is_out
from slotbroker.store import migrate
from slotbroker.store.db import Database
from slotbroker.wire.leases import CreateLease, LeaseItemSpec, UpdateLease
from slurm_cluster import SlurmCluster

pytestmark = pytest.mark.slurm


@pytest.fixture
def sdb(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path}/slotbroker.db")
    migrate.upgrade(database.engine)
    yield database
    database.dispose()


def iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat()


def at(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


def hosts_found(db: Database, count: int, now: int) -> list[str]:
    """The hosts find-slot offers (placed or as alternates) for ``count`` hosts of 2 VCPU for 20 minutes,
    in windows starting within ten minutes of ``now``."""
    doc: dict[str, Any] = {
        "components": [{"name": "a", "count": count, "resources": {"VCPU": 2}}],
        "earliest_start": iso(now),
        "latest_end": iso(now + 3600),
        "duration": "PT20M",
        "limit": 5,
    }
    result = FindSlotService(db, CalendarCache(db)).find(doc, now_s=now)
    found: set[str] = set()
    for w in result.windows:
        if w.start.timestamp() < now + 600:
            found.update(w.placement["a"], w.alternates.get("a", []))
    return sorted(found)


def test_drained_nodes_and_outside_reservations_are_not_free(
    slurm_cluster: SlurmCluster, sdb: Database
) -> None:
    cluster = slurm_cluster
    make_site(sdb, hosts=("n1", "n2", "n3"), vcpu=2)
    sync = SlurmDriftSync(sdb, SlurmConfig(conf=str(cluster.conf), users="root"))
    stray = f"sb-{uuid.uuid4()}"  # a broker reservation whose lease this broker does not have
    cluster.run("scontrol", "update", "nodename=n1", "state=drain", "reason=disk-test")
    cluster.run(
        "scontrol", "create", "reservation", "reservationname=maint", "starttime=now",
        "duration=30", "nodes=n2", "users=root",
    )  # fmt: skip
    cluster.run(
        "scontrol", "create", "reservation", f"reservationname={stray}", "starttime=now+600",
        "duration=5", "nodes=n3", "users=root",
    )  # fmt: skip
    try:
        now = int(time.time())
        assert hosts_found(sdb, 1, now) == ["n1", "n2", "n3"]  # before the sync all look free

        report = asyncio.run(sync.sync(now_s=now))
        assert sorted(report.booked) == ["slurm:node:n1", "slurm:resv:maint"]
        assert report.orphans_deleted == [stray]
        assert stray not in cluster.reservations()
        assert report.conflicts == []
        assert hosts_found(sdb, 1, now) == ["n3"]
        assert hosts_found(sdb, 2, now) == []

        again = asyncio.run(sync.sync(now_s=now + 5))
        assert (again.booked, again.ended) == ([], [])
        assert sorted(again.kept) == ["slurm:node:n1", "slurm:resv:maint"]

        cluster.run("scontrol", "update", "nodename=n1", "state=resume")
        cluster.run("scontrol", "delete", "reservationname=maint")
        back = asyncio.run(sync.sync(now_s=now + 10))
        assert sorted(back.ended) == ["slurm:node:n1", "slurm:resv:maint"]
        assert hosts_found(sdb, 1, now + 10) == ["n1", "n2", "n3"]
    finally:
        cluster.run("scontrol", "update", "nodename=n1", "state=resume", check=False)
        cluster.run("scontrol", "delete", "reservationname=maint", check=False)
        cluster.run("scontrol", "delete", f"reservationname={stray}", check=False)
        cluster.wait_idle()


def test_a_drain_under_a_broker_lease_is_reported_not_overbooked(
    slurm_cluster: SlurmCluster, sdb: Database
) -> None:
    cluster = slurm_cluster
    hosts = make_site(sdb, hosts=("n1", "n2", "n3"), vcpu=2)
    now = int(time.time())
    book(sdb, [hosts["n3"]], vcpu=1, start_s=now, end_s=now + 600)
    cluster.run("scontrol", "update", "nodename=n3", "state=drain", "reason=fan")
    try:
        report = asyncio.run(SlurmDriftSync(sdb, SlurmConfig(conf=str(cluster.conf))).sync(now_s=now))
        assert report.booked == []
        assert len(report.conflicts) == 1
        assert report.conflicts[0].startswith("slurm:node:n3: ")
    finally:
        cluster.run("scontrol", "update", "nodename=n3", "state=resume", check=False)
        cluster.wait_idle()


@pytest.mark.parametrize(
    ("state", "out"),
    [("IDLE", False), ("MIXED", False), ("IDLE+DRAIN", True), ("DOWN*", True), ("DRAINED", True),
     ("ALLOCATED+DRAIN", True), ("IDLE+NOT_RESPONDING", False), ("DOWN+NOT_RESPONDING", True)],
)  # fmt: skip
def test_which_node_states_are_out(state: str, out: bool) -> None:
    assert node_is_out(state) is out


def test_sync_slurm_command_prints_its_report(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    db = Database(url)
    migrate.upgrade(db.engine)
    make_site(db, hosts=("n1", "n2", "n3"), vcpu=2)
    slurm_cluster.run(
        "scontrol", "create", "reservation", "reservationname=cli-maint", "starttime=now+60",
        "duration=10", "nodes=n3", "users=root",
    )  # fmt: skip
    try:
        args = [
            "admin",
            "topology",
            "sync-slurm",
            "--slurm-conf",
            str(slurm_cluster.conf),
            "--database-url",
            url,
        ]
        out = CliRunner().invoke(app, args)
        assert out.exit_code == 0, out.output
        assert json.loads(out.output)["booked"] == ["slurm:resv:cli-maint"]
    finally:
        slurm_cluster.run("scontrol", "delete", "reservationname=cli-maint", check=False)
        db.dispose()


def test_the_server_syncs_from_its_event_loop(slurm_cluster: SlurmCluster, sdb: Database) -> None:
    """With ``slurm`` enabled, ``build_services`` adds the sync to the lease event loop's periodic jobs,
    throttled to ``SYNC_S``; with ``SYNC_S`` 0 it does not."""
    make_site(sdb, hosts=("n1", "n2", "n3"), vcpu=2)
    config = SlurmConfig(conf=str(slurm_cluster.conf), users="root", sync_s=30)
    planner = Planner(sdb, settings=fast_settings(), provisioners={"slurm": SlurmProvisioner(config)})
    svc = build_services(Settings(database_url=str(sdb.engine.url)), sdb, planner=planner)
    jobs = [job for job in svc.lease_events.periodic if isinstance(job, PeriodicSync)]
    assert len(jobs) == 1
    slurm_cluster.run(
        "scontrol", "create", "reservation", "reservationname=loop-maint", "starttime=now+60",
        "duration=10", "nodes=n1", "users=root",
    )  # fmt: skip
    try:
        now = int(time.time())
        svc.lease_events.tick(now)
        assert jobs[0].last is not None
        assert jobs[0].last.booked == ["slurm:resv:loop-maint"]
        assert jobs[0](now + 10) is None  # within SYNC_S: not again
        off = SlurmProvisioner(dataclasses.replace(config, sync_s=0))
        assert drift_job(sdb, {"slurm": off}) is None
    finally:
        slurm_cluster.run("scontrol", "delete", "reservationname=loop-maint", check=False)
        svc.find_slot.shutdown()


def test_a_pending_lease_is_a_reservation_before_any_job(slurm_cluster: SlurmCluster, sdb: Database) -> None:
    """The other direction: the sync mirrors a PENDING lease on the cluster's nodes as sb-<lease> in
    advance, follows its move, leaves leases on other hosts alone, and deletes it once it is cancelled."""
    cluster = slurm_cluster
    hosts = make_site(sdb, hosts=("n1", "n2", "elsewhere-1"), vcpu=2)
    leases = LeaseService(sdb, ClaimService(sdb), QuotaService(sdb))
    now = int(time.time())

    def lease_on(names: list[str]) -> str:
        items = [
            LeaseItemSpec(provider_uuid=uuid.UUID(hosts[n]), resource_class="VCPU", amount=1) for n in names
        ]
        body = CreateLease(start=at(now + 600), end=at(now + 1200), items=items)
        return str(leases.create(body, project="alpha").id)

    lease, other = lease_on(["n1", "n2"]), lease_on(["elsewhere-1"])
    sync = SlurmDriftSync(sdb, SlurmConfig(conf=str(cluster.conf), users="root"))
    name = f"sb-{lease}"
    try:
        report = asyncio.run(sync.sync())
        assert report.mirrored == [name]
        assert f"sb-{other}" not in cluster.reservations()
        res = cluster.reservations()[name]
        assert (parse_time(res["StartTime"]), parse_time(res["EndTime"])) == (now + 600, now + 1200)
        assert asyncio.run(sync.sync()).mirrored == []  # already there

        view = leases.get(lease, project=None)
        moved = UpdateLease(generation=view.generation, start=at(now + 900), end=at(now + 1500))
        leases.update(lease, moved, project=None)
        asyncio.run(sync.sync())
        res = cluster.reservations()[name]
        assert (parse_time(res["StartTime"]), parse_time(res["EndTime"])) == (now + 900, now + 1500)

        leases.cancel(lease, project=None)
        assert asyncio.run(sync.sync()).orphans_deleted == [name]
        assert name not in cluster.reservations()
    finally:
        cluster.run("scontrol", "delete", f"reservationname={name}", check=False)
