"""The lease event loop: fire every due lease event (start, before_end, end) exactly once.

Durable: the events are rows (``LeaseEventRow``) written in the same transaction that created or changed
the lease (``services.lease_schedule``). Exactly once: an event's effect, its hooks and its ``fired_at``
are committed together, in one transaction per lease, after that lease's consumer row has been locked:

* PostgreSQL: ``SELECT ... FROM consumers ... FOR UPDATE SKIP LOCKED`` - several replicas (or several
  loops) share the work, a lease being fired or changed by someone else is skipped this tick, and the
  event rows are re-read under the lock, so a fired or rescheduled event is never fired (again).
* SQLite: ``BEGIN IMMEDIATE`` makes the transaction the only writer; the re-read does the rest.

Every writer of a lease locks its consumer row before its event rows (updates, cancel, the loop), so the
loop and a concurrent update cannot deadlock on each other. A crash between events loses nothing: the
transaction either committed (effect + ``fired_at``) or did not (the event is still due next tick).

Effects: ``start`` PENDING -> ACTIVE; ``before_end`` a notice (``fired_at`` is the record, shown on the
lease view, logged and counted); ``end`` releases the lease as ENDED (``ClaimService.release_in``: what
runs is cut at now, the past stays on record). Hooks registered with ``on_event(kind, callback)`` run
inside the same transaction (the planner enqueues jobs there); a hook that raises rolls the lease's
events back and they are retried next tick. The kinds ``cancelled`` and ``error`` are recorded as already
fired rows (transition records) and their hooks run where the transition happens (``LeaseService``).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from slotbroker.domain.claims import ConsumerStatus
from slotbroker.domain.time import to_datetime
from slotbroker.services.booking.claims import ClaimService
from slotbroker.services.booking.lease_schedule import KINDS
from slotbroker.store.db import Database
from slotbroker.store.errors import is_retryable
from slotbroker.store.unit_of_work import UnitOfWork

log = logging.getLogger("slotbroker.leases")

CANCELLED = "cancelled"  # transition records (already-fired rows), never picked by the loop
ERROR = "error"
HOOK_KINDS = (*KINDS, CANCELLED, ERROR)


@dataclass(frozen=True)
class LeaseEvent:
    """What a hook is told: which lease, which event, when it was due and when it fired."""

    lease_id: str
    consumer_id: int
    project: str
    kind: str
    due_s: int
    fired_s: int


Hook = Callable[[UnitOfWork, LeaseEvent], object]


class LeaseHooks:
    """Callbacks per event kind, run inside the transaction that fires the event (in registration order)."""

    def __init__(self) -> None:
        self._hooks: dict[str, list[Hook]] = {k: [] for k in HOOK_KINDS}

    def on_event(self, kind: str, callback: Hook) -> None:
        if kind not in self._hooks:
            raise ValueError(f"unknown lease event kind {kind!r}; one of {', '.join(HOOK_KINDS)}")
        self._hooks[kind].append(callback)

    def run(self, uow: UnitOfWork, event: LeaseEvent) -> None:
        for callback in self._hooks.get(event.kind, ()):
            callback(uow, event)


def record_transition(
    uow: UnitOfWork, hooks: LeaseHooks, consumer_id: int, lease_id: str, project: str, kind: str, now_s: int
) -> None:
    """Record a transition that is not a scheduled event (``cancelled``, ``error``) as a fired row and run
    its hooks, in the caller's transaction."""
    uow.leases.add_event(consumer_id, kind, now_s, fired_at=to_datetime(now_s))
    hooks.run(uow, LeaseEvent(lease_id, consumer_id, project, kind, now_s, now_s))


def fire_in(
    uow: UnitOfWork,
    claims: ClaimService,
    hooks: LeaseHooks,
    *,
    event_id: int,
    consumer_id: int,
    lease_id: str,
    project: str,
    kind: str,
    due_s: int,
    now_s: int,
) -> bool:
    """Fire one event inside ``uow``: its effect, ``fired_at`` (guarded: only if not fired yet) and its
    hooks. False if it had already fired (nothing done). The caller holds the consumer row's lock."""
    if not uow.leases.mark_fired(event_id, to_datetime(now_s)):
        return False
    if kind == "start":
        uow.leases.set_status(consumer_id, ConsumerStatus.ACTIVE, only_from=ConsumerStatus.PENDING)
    elif kind == "end":
        claims.release_in(uow, lease_id, status=ConsumerStatus.ENDED, now_s=now_s)
    elif kind == "before_end":
        log.info("lease %s (project %s) ends at %s: notice sent", lease_id, project, due_s)
    hooks.run(uow, LeaseEvent(lease_id, consumer_id, project, kind, due_s, now_s))
    return True


@dataclass(frozen=True)
class Sweep:
    """A periodic job split into its read and its work, so that the loop can run the reads of its sweeps
    and its own due-events read in one read-only transaction a tick (a tick with nothing due then costs
    one read, not one per job). ``read(uow, now_s)``: what is due, without locks (empty: nothing, and
    ``act`` is not called); ``act(now_s, due)``: the work, in transactions of its own that re-check what
    it read under their locks. A sweep's work must not change lease events (the loop's due read may be
    taken before it). Called as a plain job (``sweep(now_s)``), it reads in a transaction of its own."""

    db: Database
    read: Callable[[UnitOfWork, int], Sequence[Any]]
    act: Callable[[int, Sequence[Any]], object]

    def __call__(self, now_s: int) -> object:
        with UnitOfWork(self.db, readonly=True) as uow:
            due = self.read(uow, now_s)
        return self.act(now_s, due) if due else 0


class LeaseEventLoop:
    """Fires due lease events; ``tick(now_s)`` does one pass (tests call it with an injected clock),
    ``start()`` runs ticks every ``interval_s`` in a daemon thread until ``stop()``.

    ``periodic`` callables (e.g. the offers' expiry ``Sweep``) are called with ``now_s`` at the start of
    every tick, in list order; the list is read live, so jobs may be appended after start. The reads of
    the sweeps that lead the list, and the due-events read when the list holds nothing but sweeps, are
    one read-only transaction (``_shared_read``); a plain job may write lease events, so the due read
    follows it as before.
    """

    def __init__(
        self,
        db: Database,
        claims: ClaimService,
        hooks: LeaseHooks,
        *,
        interval_s: float = 5.0,
        clock: Callable[[], int] | None = None,
        periodic: list[Callable[[int], object]] | None = None,
        batch: int = 200,
    ) -> None:
        self.db = db
        self.claims = claims
        self.hooks = hooks
        self.interval_s = interval_s
        self.clock = clock or claims.clock
        self.periodic: list[Callable[[int], object]] = periodic if periodic is not None else []
        self.batch = batch
        self.fired: Counter[str] = Counter()  # events fired by this loop, by kind
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def on_event(self, kind: str, callback: Hook) -> None:
        self.hooks.on_event(kind, callback)

    # -- one pass -----------------------------------------------------------------------------------------
    def tick(self, now_s: int | None = None) -> int:
        """Run the periodic jobs, then fire every event due at ``now_s``; how many events fired."""
        now = self.clock() if now_s is None else now_s
        jobs = list(self.periodic)
        sweeps: list[Sweep] = []
        for job in jobs:
            if not isinstance(job, Sweep):
                break
            sweeps.append(job)
        found, due = self._shared_read(now, sweeps, with_due=len(sweeps) == len(jobs))
        for i, job in enumerate(jobs):
            try:
                rows = found[i] if i < len(sweeps) else None
                if rows is None:
                    job(now)  # a plain job, or a sweep whose read did not run in the shared one
                elif rows:
                    sweeps[i].act(now, rows)
            except Exception:
                self.failures += 1
                log.exception("periodic job %r failed", job)
        fired = 0
        while True:
            if due is None:
                due = self._due_leases(now)
            if not due:
                return fired
            progress = 0
            for consumer_id in due:
                try:
                    n = self._fire_lease(consumer_id, now)
                except Exception as exc:
                    self.failures += 1
                    if is_retryable(exc):
                        log.info("lease %s events lost a race; next tick", consumer_id)
                    else:
                        log.exception(
                            "firing the events of consumer %s failed; retried next tick", consumer_id
                        )
                    continue
                fired += n
                progress += n
            if progress == 0 or len(due) < self.batch:
                return fired
            due = None

    def _shared_read(
        self, now_s: int, sweeps: Sequence[Sweep], *, with_due: bool
    ) -> tuple[list[Sequence[Any] | None], list[int] | None]:
        """The sweeps' reads, then (``with_due``) the due leases, in one read-only transaction. A part
        that is None was not read here (this read failed before it: the database, or a sweep's read
        raising): the caller runs that sweep whole and reads the due leases apart, as if there were no
        shared read, so a failing read costs its own job only (that run counts the failure)."""
        found: list[Sequence[Any] | None] = [None] * len(sweeps)
        due: list[int] | None = None
        try:
            with UnitOfWork(self.db, readonly=True) as uow:
                for i, sweep in enumerate(sweeps):
                    found[i] = sweep.read(uow, now_s)
                if with_due:
                    due = uow.leases.events_due(now_s, KINDS, self.batch)
        except Exception:
            log.info("the tick's shared read failed; its parts run apart", exc_info=True)
        return found, due

    def _due_leases(self, now_s: int) -> list[int]:
        """Consumers with unfired due events, earliest first (a read without locks; the firing
        transaction re-checks under the consumer's lock)."""
        with UnitOfWork(self.db, readonly=True) as uow:
            return uow.leases.events_due(now_s, KINDS, self.batch)

    def _fire_lease(self, consumer_id: int, now_s: int) -> int:
        """One transaction: lock the lease (skip it if someone else holds it), re-read its due events,
        fire them in order, commit."""
        with UnitOfWork(self.db) as uow:
            lease = uow.leases.lock_to_fire(consumer_id)
            if lease is None:
                return 0  # locked by another replica or writer (or gone): its turn, or next tick
            events = uow.leases.lock_due_events(consumer_id, now_s, KINDS)
            fired: list[str] = []
            for event_id, kind, due in events:
                if fire_in(
                    uow,
                    self.claims,
                    self.hooks,
                    event_id=event_id,
                    consumer_id=consumer_id,
                    lease_id=str(lease.uuid),
                    project=str(lease.project),
                    kind=kind,
                    due_s=due,
                    now_s=now_s,
                ):
                    fired.append(kind)
            uow.commit()
        self.fired.update(fired)
        return len(fired)

    # -- background thread --------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="lease-events", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # a database outage must not kill the thread
                self.failures += 1
                log.exception("lease event tick failed")
            self._stop.wait(self.interval_s)


__all__ = [
    "CANCELLED",
    "ERROR",
    "HOOK_KINDS",
    "Hook",
    "LeaseEvent",
    "LeaseEventLoop",
    "LeaseHooks",
    "Sweep",
    "fire_in",
    "record_transition",
]
