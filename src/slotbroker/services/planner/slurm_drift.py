"""Slurm drift, both ways: what the cluster holds that the broker did not book becomes capacity that is
not free, and what the broker booked on the cluster becomes reservations in advance.

Why: slotbroker's calendar is only right if it knows what Slurm knows. A node an operator drained, a
node that is down, or a reservation made with ``scontrol`` outside the broker would otherwise look free
in find-slot, and the lease booked there would fail at provisioning time (a surprise failure the retry
path then has to absorb). The sync turns each of them into a **blocker lease** in project
``slurm-external`` (the whole capacity of each host it covers, every resource class), named after
what it stands for, so find-slot, the calendar and the claim check all see it as booked:

* outside reservation ``R`` on nodes N from S to E -> lease ``slurm:resv:R`` on N's hosts, [S, E);
* drained / down / failing node ``n`` -> lease ``slurm:node:n`` from now for ``horizon_s``, renewed by
  each sync while the node stays out, ended (cut at now) once it is back.

Each sync compares what Slurm says with the blocker leases that exist and changes only the difference
(idempotent: a second sync with nothing new writes nothing). A blocker that cannot be booked because a
broker lease already holds that capacity is reported as a ``conflict`` naming it: that lease's
reservation is refused by Slurm and its job takes the retry path to alternate hosts.

The other direction, the broker's leases as Slurm reservations: every PENDING lease holding nodes of
this cluster gets its ``sb-<lease>`` reservation in advance, before any job exists (made or brought to
the lease's nodes and window through the provisioner's own ``provision``, so both paths agree), and an
ACTIVE lease's existing reservation follows its window (an extension without a waiting job). A lease
Slurm refuses to mirror is a ``conflict`` too. An ``sb-<lease>`` reservation whose lease no longer holds
its capacity (ended or cancelled, and a broker crash came before the planner's ``release_lease``) is
deleted; an ERROR lease keeps its capacity, and so its reservation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from uuid import UUID

from slotbroker.domain.claims import ClaimItem, ClaimRequest, ConsumerKind, ConsumerSpec, ConsumerStatus
from slotbroker.domain.errors import SlotbrokerError
from slotbroker.domain.slurm_text import RESERVATION_PREFIX, lease_of, parse_records, parse_time
from slotbroker.services.booking.claims import ClaimService
from slotbroker.services.booking.leases import LeaseService
from slotbroker.services.booking.quotas import QuotaService
from slotbroker.services.inventory.service import InventoryService
from slotbroker.services.planner.provisioners.base import (
    Allocation,
    AllocationItem,
    Provision,
    Provisioner,
    ProvisionerError,
)
from slotbroker.services.planner.provisioners.slurm import SlurmProvisioner
from slotbroker.services.planner.provisioners.slurm_cli import SlurmCommands
from slotbroker.services.planner.provisioners.slurm_config import SlurmConfig
from slotbroker.services.planner.step_context import HOLDING_LEASE
from slotbroker.store.db import Database
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire.leases import LeaseView

log = logging.getLogger("slotbroker.slurm")

PROJECT = "slurm-external"
HORIZON_S = 24 * 3600
OUT_STATES = ("DRAIN", "DOWN", "FAIL", "MAINT", "REBOOT")  # NOT_RESPONDING alone is transient
LIVE = (ConsumerStatus.PENDING.value, ConsumerStatus.ACTIVE.value)


@dataclass(frozen=True)
class Blocker:
    """Capacity Slurm holds outside the broker: on ``hosts`` over [start_s, end_s)."""

    name: str
    hosts: tuple[str, ...]
    start_s: int
    end_s: int
    renewable: bool = False  # a node that is out: its end moves forward with each sync


@dataclass
class DriftReport:
    booked: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    mirrored: list[str] = field(default_factory=list)
    orphans_deleted: list[str] = field(default_factory=list)


def node_is_out(state: str) -> bool:
    """``IDLE+DRAIN``, ``DOWN*``, ``DRAINED``, ``MIXED+DRAIN``...: the node takes no new work."""
    upper = state.upper()
    return any(word in upper for word in OUT_STATES)


class SlurmDriftSync:
    def __init__(
        self,
        db: Database,
        config: SlurmConfig,
        commands: SlurmCommands | None = None,
        *,
        provisioner: SlurmProvisioner | None = None,
        project: str = PROJECT,
        horizon_s: int = HORIZON_S,
        clock: Callable[[], float] = time.time,
        claims: ClaimService | None = None,
        leases: LeaseService | None = None,
    ) -> None:
        self.db = db
        self.config = config
        self.cli = commands or SlurmCommands(config.conf, config.bin_dir)
        self.project = project
        self.horizon_s = horizon_s
        self.clock = clock
        self.provisioner = provisioner or SlurmProvisioner(config, self.cli)
        # the service graph's (bootstrap.build_slurm_drift), so the booking policy settings reach blockers too
        self.claims = claims or ClaimService(db)
        self.leases = leases or LeaseService(db, self.claims, QuotaService(db))

    def _host_of(self, node: str) -> str | None:
        """The host provider that is ``node`` (the inverse of ``SlurmConfig.node_of``)."""
        for provider, mapped in self.config.nodes.items():
            if mapped == node:
                return provider
        return f"{self.config.host_prefix}{node}"

    async def blockers(self, now: int) -> tuple[list[Blocker], list[str], set[str]]:
        """What Slurm holds outside the broker, the broker's own reservation names, the node names."""
        out: list[Blocker] = []
        ours: list[str] = []
        for res in await self.cli.reservations():
            name = res["ReservationName"]
            if lease_of(name) is not None:
                ours.append(name)
                continue
            start, end = parse_time(res.get("StartTime", "")), parse_time(res.get("EndTime", ""))
            if start is None or end is None or end <= now:
                continue
            members = await self.cli.hostnames(res.get("Nodes", ""))
            hosts = tuple(h for h in (self._host_of(n) for n in members) if h)
            out.append(Blocker(f"slurm:resv:{name}", hosts, max(start, now), end))
        records = parse_records(await self.cli.show_nodes(), "NodeName")
        for node in records:
            if node_is_out(node.get("State", "")):
                host = self._host_of(node["NodeName"])
                if host:
                    end = now + self.horizon_s
                    out.append(Blocker(f"slurm:node:{node['NodeName']}", (host,), now, end, renewable=True))
        return out, ours, {n["NodeName"] for n in records}

    async def sync(self, now_s: int | None = None) -> DriftReport:
        now = int(self.clock()) if now_s is None else now_s
        report = DriftReport()
        wanted, ours, nodes = await self.blockers(now)
        existing = {
            lease.name: lease
            for lease in self.leases.list(project=self.project, status=list(LIVE), limit=1000).items
        }
        by_name = {b.name: b for b in wanted}
        for name, lease in existing.items():
            blocker = by_name.get(name)
            if blocker is not None and self._current(lease, blocker, now):
                report.kept.append(name)
                continue
            self.claims.release(lease.id, status=ConsumerStatus.ENDED, now_s=now)
            report.ended.append(name)
        for blocker in wanted:
            if blocker.name in report.kept or not blocker.hosts:
                continue
            try:
                self._book(blocker, now)
                report.booked.append(blocker.name)
            except SlotbrokerError as exc:
                report.conflicts.append(f"{blocker.name}: {exc}")
                log.warning("Slurm drift %s cannot be booked: %s", blocker.name, exc)
        await self._mirror(set(ours), nodes, now, report)
        for name in ours:
            lease_id = lease_of(name)
            with UnitOfWork(self.db, readonly=True) as uow:
                row = uow.jobs.lease(lease_id or "")
                gone = row is None or str(row.status) not in HOLDING_LEASE
            if gone and await self.cli.delete_reservation(name):
                report.orphans_deleted.append(name)
        return report

    async def _mirror(self, ours: set[str], nodes: set[str], now: int, report: DriftReport) -> None:
        """The broker's live leases on this cluster's nodes as reservations (see the module docstring)."""
        cursor: str | None = None
        while True:
            page = self.leases.list(project=None, status=list(LIVE), cursor=cursor, limit=500)
            for lease in page.items:
                if lease.project == self.project:
                    continue
                name = f"{RESERVATION_PREFIX}{lease.id}"
                if lease.status == ConsumerStatus.ACTIVE.value and name not in ours:
                    continue  # started: its jobs made (and release) its reservation
                allocation = self._allocation(lease, nodes, now)
                if allocation is None:
                    continue
                try:
                    if name in ours:
                        await self.provisioner.follow(Provision(name, allocation))
                    else:
                        await self.provisioner.provision(allocation, "sync")
                        report.mirrored.append(name)
                except ProvisionerError as exc:
                    report.conflicts.append(f"{name}: {exc}")
            cursor = page.next_cursor
            if cursor is None:
                return

    def _allocation(self, lease: LeaseView, nodes: set[str], now: int) -> Allocation | None:
        """The lease's allocation as the provisioner sees it, limited to this cluster's nodes (None:
        it holds none of them now)."""
        live = [it for it in lease.items if it.end.timestamp() > now]
        hosts = tuple(dict.fromkeys(it.provider_name for it in live))
        mine = tuple(h for h in hosts if self.config.node_of(h) in nodes)
        if not mine:
            return None
        items = tuple(AllocationItem(it.provider_name, it.resource_class, it.amount) for it in live)
        return Allocation(lease.id, lease.project, lease.start_s, lease.end_s, items, hosts=mine)

    def _current(self, lease: LeaseView, blocker: Blocker, now: int) -> bool:
        """Whether the blocker lease still says what Slurm says (then it is left alone)."""
        if sorted({it.provider_name for it in lease.items}) != sorted(blocker.hosts):
            return False
        if blocker.renewable:
            return lease.end_s >= now + self.horizon_s // 2
        started = lease.start_s <= now and blocker.start_s <= now
        return lease.end_s == blocker.end_s and (started or lease.start_s == blocker.start_s)

    def _book(self, blocker: Blocker, now: int) -> None:
        inventory = InventoryService(self.db)
        items: list[ClaimItem] = []
        for host in blocker.hosts:
            with UnitOfWork(self.db, readonly=True) as uow:
                row = uow.providers.get_by_name(host)
                found = None if row is None else str(row.uuid)
            if found is None:
                continue  # a node the topology does not have
            view = inventory.get_provider(UUID(found))
            whole = view.inventories.items()
            items += [ClaimItem(view.uuid, rc, inv.capacity) for rc, inv in whole if inv.capacity]
        if not items:
            return
        status = ConsumerStatus.ACTIVE if blocker.start_s <= now else ConsumerStatus.PENDING
        start, end = blocker.start_s, blocker.end_s
        spec = ConsumerSpec(ConsumerKind.LEASE, self.project, start, end, name=blocker.name, status=status)
        self.claims.claim(ClaimRequest(spec, tuple(items)), now_s=now)


class PeriodicSync:
    """A ``LeaseEventLoop`` periodic job: ``sync`` at most every ``every_s`` seconds (the loop ticks far
    more often). It runs in the loop's thread, so its tool calls never block a request."""

    def __init__(self, sync: SlurmDriftSync, every_s: float) -> None:
        self.sync, self.every_s = sync, every_s
        self.last_s: int | None = None
        self.last: DriftReport | None = None

    def __call__(self, now_s: int) -> DriftReport | None:
        if self.last_s is not None and now_s - self.last_s < self.every_s:
            return None
        self.last_s = now_s
        self.last = asyncio.run(self.sync.sync(now_s))
        if self.last.conflicts or self.last.orphans_deleted:
            log.info("Slurm drift: %s", self.last)
        return self.last


def drift_sync(
    db: Database,
    provisioners: Mapping[str, Provisioner],
    config: SlurmConfig | None = None,
    *,
    claims: ClaimService | None = None,
    leases: LeaseService | None = None,
) -> SlurmDriftSync | None:
    """The drift sync with ``config`` (default: the enabled ``slurm`` provisioner's; None when there is
    neither). An enabled provisioner with that config lends its tools, so both sides ask one cluster."""
    slurm = provisioners.get("slurm")
    enabled = slurm if isinstance(slurm, SlurmProvisioner) else None
    config = config or (enabled.config if enabled is not None else None)
    if config is None:
        return None
    if enabled is not None and enabled.config == config:
        return SlurmDriftSync(db, config, enabled.cli, provisioner=enabled, claims=claims, leases=leases)
    return SlurmDriftSync(db, config, claims=claims, leases=leases)


def drift_job(
    db: Database,
    provisioners: Mapping[str, Provisioner],
    *,
    claims: ClaimService | None = None,
    leases: LeaseService | None = None,
) -> PeriodicSync | None:
    """The periodic drift sync for an enabled ``slurm`` provisioner (None: not enabled, or ``SYNC_S`` 0)."""
    sync = drift_sync(db, provisioners, claims=claims, leases=leases)
    if sync is None or sync.config.sync_s <= 0:
        return None
    return PeriodicSync(sync, sync.config.sync_s)


__all__ = [
    "HORIZON_S",
    "PROJECT",
    "Blocker",
    "DriftReport",
    "PeriodicSync",
    "SlurmDriftSync",
    "drift_job",
    "drift_sync",
    "node_is_out",
]
