"""Replay through the real booking path: the services the API uses, built by ``bootstrap.build_services``
on a fresh SQLite database, driven by the simulated clock of ``simulate``.

Each job, at its submit time, asks find-slot for the earliest window of ``procs`` one-core instances for
its *requested* time (``policy`` is the engine's placement policy) and books that window as a lease
(``LeaseService.create``: the claim, the capacity check and the lease events in one transaction). The
lease event loop is ticked at every instant of the clock, so leases start and end as in production; a
job whose real runtime is shorter ends its lease at once (``services.lease_end.end_now``: the tail goes
back to the calendar). That is conservative backfilling done by the broker itself: every job holds a
reservation from the moment it arrives. Every service call is given the simulated ``now_s``; nothing
reads the wall clock.

It is far slower than the fast path (a find-slot and a transaction per job, docs/replay.md), so it is
run on a prefix of a trace; ``compare`` reports where its starts differ from the fast path's.
"""

from __future__ import annotations

import heapq
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slotbroker.bootstrap import Services, build_services
from slotbroker.config import Settings
from slotbroker.domain.inventory import Inventory
from slotbroker.domain.providers import ProviderKind
from slotbroker.domain.time import to_datetime
from slotbroker.domain.topology import ProviderNode, Topology
from slotbroker.replay.audit import Booking
from slotbroker.replay.policies import Ask, expansion_factor
from slotbroker.replay.service_compact import compact_waiting
from slotbroker.replay.simulate import Run, simulate
from slotbroker.replay.trace import Trace
from slotbroker.services.booking.lease_end import end_now
from slotbroker.services.booking.lease_rebook import MOVED
from slotbroker.services.booking.lease_schedule import event_times
from slotbroker.store import migrate
from slotbroker.store.db import Database
from slotbroker.wire.leases import CreateLease, LeaseItemSpec

PROJECT = "replay"
SITE = "machine"
RANGE_DAYS = (
    90  # how far ahead find-slot looks for a window (the default SLOTBROKER_FIND_SLOT_MAX_RANGE_DAYS)
)


def pool_topology(hosts: int, cores: int = 1) -> Topology:
    """One region, one site, ``hosts`` identical hosts ``h0001``... with ``cores`` VCPU each."""
    width = max(4, len(str(hosts)))
    nodes = [
        ProviderNode(
            name=f"h{n:0{width}d}", kind=ProviderKind.HOST, inventories={"VCPU": Inventory(total=cores)}
        )
        for n in range(1, hosts + 1)
    ]
    site = ProviderNode(name=SITE, kind=ProviderKind.SITE, children=nodes)
    return Topology(providers=[ProviderNode(name="replay", kind=ProviderKind.REGION, children=[site])])


def request(ask: Ask, at: int, placement: str, *, start_now: bool = False) -> dict[str, Any]:
    """The find-slot request for ``ask`` at ``at`` (epoch seconds): ``procs`` one-core instances for its
    requested time, the earliest window within ``RANGE_DAYS`` (``start_now``: only one starting now)."""
    return {
        "components": [{"name": "job", "count": ask.procs, "resources": {"VCPU": 1}}],
        "duration": ask.req,
        "earliest_start": to_datetime(at).isoformat(),
        "latest_end": to_datetime(at + (ask.req if start_now else RANGE_DAYS * 86400)).isoformat(),
        "limit": 1,
        "alternates": 0,
        "policy": placement,
        "explain": False,  # an empty answer is asked again at the next instant; nobody reads why
    }


class NoWindow(RuntimeError):
    """Find-slot found no window for a job within its range: the replay cannot go on."""


@dataclass
class ServicePolicy:
    """The broker as a scheduling policy: every arrival books the earliest window (see the module)."""

    svc: Services
    uuids: dict[str, str]
    epoch_s: int
    placement: str = "earliest"
    name: str = "service_conservative"
    leases: dict[int, tuple[str, int]] = field(default_factory=dict)  # job id -> (lease id, start)
    waiting: dict[int, Ask] = field(default_factory=dict)
    found_slots: int = 0
    due: list[int] = field(default_factory=list)  # heap: when the booked leases' events fall due
    ticks: int = 0
    compact: bool = False  # on every early end, compact the waiting leases (replay/service_compact.py)
    moves: int = 0

    def tick(self, now: int) -> None:
        """Tick the lease event loop when one of the leases booked here has an event due: a tick with
        nothing due fires nothing (this database holds only these leases), so skipping it changes
        nothing but the cost (each tick is two reads). Stale times (a lease cancelled or ended early)
        only cost an empty tick."""
        if not self.due or self.due[0] > now:
            return
        while self.due and self.due[0] <= now:
            heapq.heappop(self.due)
        self.svc.lease_events.tick(self.epoch_s + now)
        self.ticks += 1

    def book(self, ask: Ask, now: int, *, start_now: bool = False) -> tuple[str, int] | None:
        """Find-slot then lease: the earliest window for ``ask`` from ``now`` (``start_now``: only one
        starting now, else None). Returns (lease id, start in trace time)."""
        at = self.epoch_s + now
        doc = request(ask, at, self.placement, start_now=start_now)
        result = self.svc.find_slot.find(doc, now_s=at, project=PROJECT)
        self.found_slots += 1
        if not result.windows:
            if start_now:
                return None
            raise NoWindow(f"job {ask.id}: no window within {RANGE_DAYS} days of its submit time")
        window = result.windows[0]
        amounts = Counter(window.placement["job"])
        items = [
            LeaseItemSpec(provider_uuid=self.uuids[h], resource_class="VCPU", amount=n)
            for h, n in amounts.items()
        ]
        start = window.start
        end = to_datetime(int(start.timestamp()) + ask.req)
        lease = self.svc.leases.create(
            CreateLease(name=f"job {ask.id}", start=start, end=end, items=items), project=PROJECT, now_s=at
        )
        notice = self.svc.leases.policy.before_end_notice_s
        for due in event_times(lease.start_s, lease.end_s, notice).values():
            if due > at:  # what is due now fired in the creating transaction
                heapq.heappush(self.due, due - self.epoch_s)
        return lease.id, lease.start_s - self.epoch_s

    def submit(self, ask: Ask, now: int) -> None:
        booked = self.book(ask, now)
        assert booked is not None
        self.leases[ask.id] = booked
        self.waiting[ask.id] = ask

    def finish(self, ask: Ask, start: int, now: int) -> None:
        lease_id, _ = self.leases[ask.id]
        if now < start + ask.req:  # else the lease ends at its booked end, by its own event
            end_now(self.svc.leases, lease_id, now_s=self.epoch_s + now)
            if self.compact:
                self.moves += compact_waiting(self, now)

    def schedule(self, now: int) -> list[Ask]:
        self.tick(now)
        due = [ask for ask_id, ask in self.waiting.items() if self.leases[ask_id][1] <= now]
        for ask in due:
            del self.waiting[ask.id]
        return due

    def next_wakeup(self) -> int | None:
        return min((self.leases[i][1] for i in self.waiting), default=None)


class ServiceEasy(ServicePolicy):
    """EASY backfilling done by a client of the broker: the queue's head holds a reservation (a PENDING
    lease), re-placed at every pass as if it were gone, so it moves earlier when capacity frees; every
    other job starts now if find-slot has a window starting now (which cannot touch the head's lease).
    ``order`` sorts the queue at each pass (the fast path's own key, e.g. ``policies.expansion_factor``
    for ``priority``; None: arrival order).

    The re-placing is the broker's ``LeaseRebooker.rebook``: find-slot's answer to the head's request on
    the calendar without its lease, which is the answer cancelling the lease and booking again would
    get; the lease is kept when that answer is the lease itself, moved onto it in one transaction when
    it starts at another time, and only otherwise (the lease started at this instant, or other hosts at
    the same times, or the head is now another job) cancelled and booked again. Keeping the lease
    without asking is not exact (its hosts are not always those a booking now would choose, and a
    later backfill's fit depends on them: decisions 0037, 0040); asking as if it were gone is.

    A job asks "can I start now?" only if it needs no more processors than are free now (read from the
    broker's site summary, ``GET /v1/sites``, once a pass, then lowered by each job started): a wider
    job's answer is empty, and asking has no effect, so skipping it changes nothing."""

    def __init__(
        self,
        svc: Services,
        uuids: dict[str, str],
        epoch_s: int,
        placement: str = "earliest",
        *,
        order: Callable[[Ask, int], float] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(svc, uuids, epoch_s, placement=placement, name=name or f"service_easy_{placement}")
        self.queue: list[Ask] = []
        self.order = order
        self.reservation: tuple[str, int] | None = None  # the head's PENDING lease, and the head's job id
        self.skipped = 0  # "can it start now?" questions the free-capacity bound answered
        self.rebooked: Counter[str] = Counter()  # the reservation at each pass: kept, moved, or why not

    def submit(self, ask: Ask, now: int) -> None:
        self.queue.append(ask)

    def _free_now(self, at: int) -> int:
        for site in self.svc.sites.list(now_s=at).items:
            if site.name == SITE:
                return sum(c.free for c in site.classes if c.resource_class == "VCPU")
        raise LookupError(f"no site {SITE!r}")

    def _rebook(self, head: Ask, now: int) -> tuple[str, int] | None:
        """The reservation re-placed for ``head`` (lease id, start in trace time), or None once it is
        cancelled (it was another job's, or the broker could not re-place it in one move)."""
        assert self.reservation is not None
        (lease_id, job), self.reservation = self.reservation, None
        at = self.epoch_s + now
        if job == head.id:
            got = self.svc.rebooking.rebook(
                lease_id, request(head, at, self.placement), project=PROJECT, now_s=at
            )
            self.rebooked[got.outcome or got.reason or ""] += 1
            if got.outcome is not None and got.window is not None:
                start = int(got.window.start.timestamp())
                if got.outcome == MOVED:
                    notice = self.svc.leases.policy.before_end_notice_s
                    for due in event_times(start, start + head.req, notice).values():
                        if due >= at:
                            heapq.heappush(self.due, due - self.epoch_s)
                    self.tick(now)  # a start due now fires now, as a lease created now starts at once
                return lease_id, start - self.epoch_s
        else:
            self.rebooked["other_head"] += 1
        self.svc.leases.cancel(lease_id, project=PROJECT, now_s=at)
        return None

    def schedule(self, now: int) -> list[Ask]:
        at = self.epoch_s + now
        self.tick(now)
        if self.order is not None:
            key = self.order
            self.queue.sort(key=lambda a: (key(a, now), a.submit, a.id))
        started: list[Ask] = []
        while self.queue:
            head = self.queue[0]
            booked = self._rebook(head, now) if self.reservation is not None else None
            if booked is None:
                booked = self.book(head, now)
            assert booked is not None
            if booked[1] > now:
                self.reservation = (booked[0], head.id)
                break
            self.leases[head.id] = booked
            started.append(self.queue.pop(0))
        if len(self.queue) > 1:
            free = self._free_now(at)
            for ask in list(self.queue[1:]):
                if free == 0:
                    break
                if ask.procs > free:
                    self.skipped += 1
                    continue
                got = self.book(ask, now, start_now=True)
                if got is not None:
                    self.leases[ask.id] = got
                    self.queue.remove(ask)
                    started.append(ask)
                    free -= ask.procs
        return started

    def next_wakeup(self) -> int | None:
        return None


@dataclass(frozen=True)
class ServiceRun:
    run: Run
    bookings: tuple[Booking, ...]
    database_url: str | None  # kept only when the caller named the directory


def open_services(trace: Trace, directory: Path, *, cores: int = 1) -> tuple[Services, dict[str, str]]:
    """A fresh, migrated SQLite database in ``directory`` holding the trace's machine, and its services."""
    url = f"sqlite:///{directory / 'replay.db'}"
    db = Database(url)
    migrate.upgrade(db.engine)
    longest = max((job.req for job in trace.jobs), default=0)
    settings = Settings(
        database_url=url,
        migrate_on_start=False,
        # the machine's own limit was the requested time; the broker's lease cap must not cut it shorter
        max_lease_duration_s=max(Settings().max_lease_duration_s, longest),
        event_loop_interval_s=0,
        planner_workers=0,
        find_slot_max_range_days=RANGE_DAYS,
        find_slot_async_cost=1e12,  # the replay waits for every answer; never a find-slot job
    )
    svc = build_services(settings, db)
    if trace.capacity % cores:
        raise ValueError(f"{trace.capacity} processors do not make hosts of {cores} cores")
    svc.topology.import_(pool_topology(trace.capacity // cores, cores))
    exported = svc.topology.export()
    uuids = {h.name: str(h.uuid) for h in exported.providers[0].children[0].children}
    return svc, uuids


SERVICE_POLICIES = ("conservative", "conservative_compact", "easy", "priority")


def service_policy(
    name: str, svc: Services, uuids: dict[str, str], epoch_s: int, placement: str
) -> ServicePolicy:
    """The client-side policy ``name`` (``SERVICE_POLICIES``) on ``svc``; ``priority`` orders EASY's
    queue by the fast path's own ``expansion_factor``; ``conservative_compact`` compacts on early ends."""
    if name == "conservative":
        return ServicePolicy(svc, uuids, epoch_s, placement=placement, name=f"service_{placement}")
    if name == "conservative_compact":
        name = f"service_compact_{placement}"
        return ServicePolicy(svc, uuids, epoch_s, placement=placement, name=name, compact=True)
    if name == "easy":
        return ServiceEasy(svc, uuids, epoch_s, placement)
    if name == "priority":
        return ServiceEasy(
            svc, uuids, epoch_s, placement, order=expansion_factor, name=f"service_priority_{placement}"
        )
    raise ValueError(f"the service path replays {', '.join(SERVICE_POLICIES)}, not {name!r}")


def replay_services(
    trace: Trace,
    *,
    placement: str = "earliest",
    directory: Path | None = None,
    cores: int = 1,
    policy: str = "conservative",
) -> ServiceRun:
    """Replay ``trace`` through the services (see the module docstring) under ``policy``
    (``SERVICE_POLICIES``); the bookings are read back from the database for the audit."""
    with tempfile.TemporaryDirectory(prefix="slotbroker-replay-") as tmp:
        where = directory or Path(tmp)
        svc, uuids = open_services(trace, where, cores=cores)
        try:
            run = simulate(trace, service_policy(policy, svc, uuids, trace.epoch_s, placement))
            bookings = read_bookings(svc, trace.epoch_s)
        finally:
            svc.close()
        return ServiceRun(run, bookings, f"sqlite:///{where / 'replay.db'}" if directory else None)


def read_bookings(svc: Services, epoch_s: int) -> tuple[Booking, ...]:
    """Every lease row as a ``Booking`` (job id from the lease name), in trace time."""
    out: list[Booking] = []
    cursor: str | None = None
    while True:
        page = svc.leases.list(project=PROJECT, cursor=cursor, limit=500)
        for lease in page.items:
            job = int(lease.name.removeprefix("job "))
            for item in lease.items:
                out.append(
                    Booking(
                        host=item.provider_name,
                        job=job,
                        start=int(item.start.timestamp()) - epoch_s,
                        end=int(item.end.timestamp()) - epoch_s,
                        amount=item.amount,
                    )
                )
        cursor = page.next_cursor
        if cursor is None:
            return tuple(out)
