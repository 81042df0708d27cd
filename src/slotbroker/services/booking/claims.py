"""Claims: turn a ``ClaimRequest`` into a consumer and its allocations, or refuse, in one transaction.

The database transaction is the only authority on capacity (docs/decisions/0005-claims-locking.md):

1. check the request on its own (``ClaimRequest.problems``: times in the supported range, and so on)
   -> ``ValidationFailed``, then the booking policy (``domain/limits.py``) -> ``Forbidden``;
2. lock every provider the claim touches (PostgreSQL ``SELECT ... ORDER BY id FOR UPDATE``; SQLite's
   ``BEGIN IMMEDIATE`` already holds the single writer lock);
3. read their inventories (after the lock, so no inventory change can slip in between) and check that
   each class exists on its provider, each amount follows min_unit/max_unit/step_size and each VLAN tag
   is in the port's range -> ``ValidationFailed``;
4. peak live usage over the interval of every touched (provider, class), in one SQL statement, plus the
   new amounts must stay within capacity; no live allocation may hold a claimed VLAN tag at an
   overlapping time -> ``CapacityConflict`` with one ``FieldError`` per offending item;
5. reap expired holds in the way (if any), insert the consumer and allocations, bump the calendar
   generation last and commit.

Steps 3 and 4 are one pure function on the rows read (``domain/claim_rule.py: decide``); the SQL is in
``store/claims/``. On PostgreSQL a claim without VLAN tags first tries two round trips
(``store/claims/pg_two_trips.py``, switch ``pg_two_trips``) and falls back to the general path when
the project has quotas on its classes or expired holds are in the way.

``claim`` also checks the project's quotas in that transaction (``QuotaService.check_in``, which locks
the quota rows, before step 2: the order leases and offers use); ``claim_in``'s callers check them
themselves, some over a different interval (a lease extension counts only the added time).

A deadlock or serialization failure rolls back and retries the whole transaction a bounded number of
times (``services/retry.py``), then raises ``ConcurrentUpdate``. ``claim_in`` / ``release_in`` run
inside a caller's unit of work so the offers layer can compose them (accept = lease claim + sibling
releases in one transaction).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from slotbroker.domain import claim_rule
from slotbroker.domain.claim_rule import ReapFirst, Write
from slotbroker.domain.claims import (
    RELEASE_STATUSES,
    ClaimRequest,
    ClaimResult,
    ConsumerStatus,
    ReleaseResult,
)
from slotbroker.domain.errors import AlreadyExists, FieldError, NotFound, ValidationFailed
from slotbroker.domain.limits import BookingPolicy
from slotbroker.domain.time import now_s
from slotbroker.services.booking.quotas import QuotaItem, QuotaService
from slotbroker.services.retry import MAX_ATTEMPTS, retrying, retrying_async
from slotbroker.store import claims as sql
from slotbroker.store.claims import pg_two_trips as two_trips
from slotbroker.store.db import Database
from slotbroker.store.errors import is_uuid_taken
from slotbroker.store.unit_of_work import UnitOfWork

T = TypeVar("T")


class ClaimService:
    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], int] = now_s,
        max_attempts: int = MAX_ATTEMPTS,
        pg_two_trips: bool = True,
        pool_slots: int | None = None,
        policy: BookingPolicy | None = None,
    ) -> None:
        """``pg_two_trips``: on PostgreSQL, claim in two round trips (``store/claims/pg_two_trips.py``)
        when the claim allows; off, or on SQLite, every claim takes the general path (``claim_in``).
        ``pool_slots``: how many claims ``claim_async`` runs at once per event loop (default: what the
        claims pool keeps)."""
        self.db = db
        self.clock = clock
        self.policy = policy or BookingPolicy()
        self.quotas = QuotaService(db)
        self.max_attempts = max_attempts
        self._two_trips = (
            two_trips.Statements(db.engine.dialect)
            if pg_two_trips and db.engine.dialect.name == "postgresql"
            else None
        )
        # claim_async's bound, per event loop: below what the claims pool holds, so checking a
        # connection out never makes the loop wait
        self.pool_slots = pool_slots or db.claim_pool_size
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    # -- public API ---------------------------------------------------------------------------------------
    def check(self, request: ClaimRequest, now_s: int) -> None:
        """What every claim passes before any database is asked, on every path: the request on its own
        (``ValidationFailed``), then the booking policy (``Forbidden``)."""
        problems = request.problems(now_s)
        if problems:
            raise ValidationFailed("invalid claim", problems)
        c = request.consumer
        self.policy.check(c.start_s, c.end_s, now_s, expires_s=c.expires_s)

    def claim(self, request: ClaimRequest, *, now_s: int | None = None) -> ClaimResult:
        """Claim everything in ``request`` in one transaction, or raise and write nothing.

        Raises ``ValidationFailed`` (bad request, unknown provider or class, unit rules, VLAN outside
        the port's range), ``Forbidden`` (booking policy; ``quota_exceeded``: the project's quotas,
        checked in the same transaction), ``CapacityConflict`` (does not fit), ``AlreadyExists``
        (consumer uuid taken) or ``ConcurrentUpdate`` (still losing to concurrent writers after the
        retries).
        """
        now = self.clock() if now_s is None else now_s
        self.check(request, now)
        fast = self.two_trips_for(request)

        def attempt(n: int) -> ClaimResult:
            if fast:
                for _ in range(2):  # a second go prepares the statements afresh
                    try:
                        done = self._claim_two_trips(request, now, n)
                    except two_trips.StalePrepared:
                        continue
                    if done is not None:
                        return done
                    break
            return self._claim_once(request, now, n)

        with _uuid_taken_is_already_exists(request):
            return retrying(attempt, self.max_attempts)

    async def claim_async(self, request: ClaimRequest, *, now_s: int | None = None) -> ClaimResult:
        """``claim`` for callers on an event loop (the API's claim fast path). On PostgreSQL, without
        VLAN tags, the claim runs on the loop itself (no worker thread), at most ``pool_slots`` at once
        so that the claims pool never makes the loop wait; anything else runs ``claim`` in a thread."""
        now = self.clock() if now_s is None else now_s
        if not self.two_trips_for(request):
            return await asyncio.to_thread(self.claim, request, now_s=now)
        self.check(request, now)
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop) or self._slots.setdefault(loop, asyncio.Semaphore(self.pool_slots))

        async def attempt(n: int) -> ClaimResult | None:
            for _ in range(2):  # a second go prepares the statements afresh
                try:
                    return await self._claim_two_trips_async(request, now, n)
                except two_trips.StalePrepared:
                    continue
            return None

        async with slots:
            with _uuid_taken_is_already_exists(request):
                done = await retrying_async(attempt, self.max_attempts)
        if done is not None:
            return done
        return await asyncio.to_thread(self._claim_general, request, now)

    def two_trips_for(self, request: ClaimRequest) -> bool:
        """Whether ``request`` may try the two-round-trip path: it is on, on PostgreSQL, and the claim
        has no VLAN tags (their holders are read by the general path only)."""
        return self._two_trips is not None and all(it.vlan_tag is None for it in request.items)

    def release(
        self,
        consumer_uuid: str,
        *,
        status: ConsumerStatus = ConsumerStatus.RELEASED,
        now_s: int | None = None,
    ) -> ReleaseResult:
        """Free the consumer's allocations exactly once and set ``status`` (one of RELEASE_STATUSES).

        RELEASED / REJECTED / CANCELLED / EXPIRED delete every allocation; ENDED (a lease stopping
        early or on time) deletes what has not started and cuts what is running at ``now``. Calling it
        again, or after any other release status, changes nothing and says ``already_released``.
        Raises ``NotFound`` for an unknown consumer.
        """
        now = self.clock() if now_s is None else now_s

        def attempt(_: int) -> ReleaseResult:
            with UnitOfWork(self.db) as uow:
                result = self.release_in(uow, consumer_uuid, status=status, now_s=now)
                uow.commit()
                return result

        return retrying(attempt, self.max_attempts)

    def expire_holds(self, *, now_s: int | None = None, limit: int = 1000) -> int:
        """Sweeper: mark holds past their expiry EXPIRED and delete their allocations; how many."""
        now = self.clock() if now_s is None else now_s

        def attempt(_: int) -> int:
            with UnitOfWork(self.db) as uow:
                ids = sql.expire_all_holds(uow.session, now, limit)
                if ids:
                    sql.bump_calendar(uow.session)
                uow.commit()
                return len(ids)

        return retrying(attempt, self.max_attempts)

    # -- composable steps (inside a caller's unit of work) ----------------------------------------------
    def claim_in(
        self, uow: UnitOfWork, request: ClaimRequest, *, now_s: int, attempts: int = 1
    ) -> ClaimResult:
        """The claim's statements inside ``uow``; the caller commits. Bumps the calendar generation
        as its last statement, so call it last in the transaction when you can (the calendar row is
        every writer's hot row)."""
        self.check(request, now_s)
        session = uow.session
        s, e = request.consumer.start_s, request.consumer.end_s
        locked = sql.lock_providers(session, {it.provider_uuid for it in request.items})
        wanted = claim_rule.wanted_of(request, locked)
        state = sql.pair_states(session, wanted, s, e, now_s)
        tags = claim_rule.vlan_tags(request, locked)
        taken = sql.vlan_holders(session, tags, s, e, now_s) if tags else set()
        decision = claim_rule.decide(request, locked, state, taken)
        if isinstance(decision, ReapFirst):
            sql.reap_expired_holds(session, decision.pairs, s, e, now_s)
            decision = decision.then
        consumer_id = sql.write_claim(session, decision.consumer, decision.rows, decision.shard_key)
        return decision.result(request, consumer_id, attempts)

    def release_in(
        self,
        uow: UnitOfWork,
        consumer_uuid: str,
        *,
        status: ConsumerStatus = ConsumerStatus.RELEASED,
        now_s: int,
        consumer_id: int | None = None,
    ) -> ReleaseResult:
        """Release inside ``uow`` (see ``release``); the caller commits. ``consumer_id``: the consumer's
        id, when the caller has read it (its row locked), which saves a lookup."""
        if status not in RELEASE_STATUSES:
            allowed = ", ".join(sorted(RELEASE_STATUSES))
            raise ValidationFailed(
                f"cannot release into {status}", [FieldError("/status", f"one of {allowed}")]
            )
        done = sql.release_consumer(uow.session, consumer_uuid, status.value, now_s, consumer_id=consumer_id)
        if done.consumer_id is None:
            raise NotFound(f"no consumer {consumer_uuid}")
        if done.changed:
            sql.bump_calendar(uow.session, done.consumer_id)
        return ReleaseResult(
            consumer_uuid=consumer_uuid,
            status=done.status,
            already_released=not done.changed,
            allocations_deleted=done.deleted,
            allocations_ended=done.ended,
        )

    # -- the paths ----------------------------------------------------------------------------------------
    def _claim_once(self, request: ClaimRequest, now: int, attempts: int) -> ClaimResult:
        """One attempt of the general path: the project's quotas (their rows locked first, as leases
        and offers lock them), then ``claim_in``, in a unit of work of its own, committed."""
        with UnitOfWork(self.db) as uow:
            c = request.consumer
            self.quotas.check_in(uow, c.project, quota_items(request), c.start_s, c.end_s, now)
            result = self.claim_in(uow, request, now_s=now, attempts=attempts)
            uow.commit()
            return result

    def _claim_general(self, request: ClaimRequest, now: int) -> ClaimResult:
        with _uuid_taken_is_already_exists(request):
            return retrying(lambda n: self._claim_once(request, now, n), self.max_attempts)

    def _claim_two_trips(self, request: ClaimRequest, now_s: int, attempts: int) -> ClaimResult | None:
        """``claim_in`` plus COMMIT in two round trips (``store/claims/pg_two_trips.py``): the same
        decision on the same rows, read under the same locks. None when the general path must do it:
        the project has a quota on a claimed class (the general path locks the quota rows and checks
        them), or expired holds to reap first (rare; the general path reaps them in its transaction)."""
        assert self._two_trips is not None
        session = two_trips.Session(self.db.claims_engine.raw_connection(), self._two_trips)
        try:
            found = session.begin_read(_read(request, now_s))
            write = _write_of(request, found)
            if write is None:
                return None
            return write.result(request, session.write_commit(write), attempts)
        finally:
            session.finish()

    async def _claim_two_trips_async(
        self, request: ClaimRequest, now_s: int, attempts: int
    ) -> ClaimResult | None:
        """``_claim_two_trips`` on the event loop: the same steps, waiting on the socket, not a thread."""
        assert self._two_trips is not None
        session = two_trips.Session(self.db.claims_engine.raw_connection(), self._two_trips)
        try:
            found = await session.begin_read_async(_read(request, now_s))
            write = _write_of(request, found)
            if write is None:
                return None
            return write.result(request, await session.write_commit_async(write), attempts)
        finally:
            await session.finish_async()


__all__ = ["ClaimService", "quota_items"]


def _read(request: ClaimRequest, now_s: int) -> two_trips.Read:
    """The first round trip's reads, keys in a stable order (so statements and locks repeat)."""
    c, items = request.consumer, request.items
    return two_trips.Read(
        uuids=sorted({it.provider_uuid for it in items}),
        pairs=sorted({(it.provider_uuid, it.resource_class) for it in items}),
        start_s=c.start_s,
        end_s=c.end_s,
        now_s=now_s,
        n_items=len(items),
        project=c.project,
        classes=sorted({it.resource_class for it in items}),
    )


def _write_of(request: ClaimRequest, found: two_trips.Found) -> Write | None:
    """The decision on the first round trip's rows: the write, or None for the general path."""
    if found.quota:
        return None
    decision = claim_rule.decide(request, found.locked, found.state)
    return decision if isinstance(decision, Write) else None


def quota_items(request: ClaimRequest) -> list[QuotaItem]:
    """The request's items as the quota sees them, each named by its pointer in the request."""
    return [QuotaItem(it.resource_class, it.amount, f"/items/{i}") for i, it in enumerate(request.items)]


@contextmanager
def _uuid_taken_is_already_exists(request: ClaimRequest) -> Iterator[None]:
    """A unique violation on the consumer's uuid is the caller's ``AlreadyExists``; others stay."""
    try:
        yield
    except Exception as exc:
        uuid = request.consumer.uuid
        if uuid is not None and is_uuid_taken(exc):
            raise AlreadyExists(f"consumer {uuid} exists", [FieldError("/consumer/uuid", "taken")]) from None
        raise
