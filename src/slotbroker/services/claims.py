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

``claim`` also checks the project's quotas in that transaction (``QuotaService.check_in``, which locks
the quota rows, before step 2: the order leases and offers use); ``claim_in``'s callers check them
themselves, some over a different interval (a lease extension counts only the added time).

A deadlock or serialization failure rolls back and retries the whole transaction a bounded number of
times, then raises ``ConcurrentUpdate``. ``claim_in`` / ``release_in`` run inside a caller's unit of work
so the offers layer can compose them (accept = lease claim + sibling releases in one transaction).
"""

from __future__ import annotations

import asyncio
import random
import time
import weakref
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError

from slotbroker.domain.claims import (
    RELEASE_STATUSES,
    ClaimRequest,
    ClaimResult,
    ConsumerStatus,
    ReleaseResult,
)
from slotbroker.domain.errors import (
    AlreadyExists,
    CapacityConflict,
    ConcurrentUpdate,
    FieldError,
    NotFound,
    ValidationFailed,
)
from slotbroker.domain.limits import BookingPolicy
from slotbroker.services import claim_checks as checks
from slotbroker.services.quotas import QuotaItem, QuotaService
from slotbroker.store import claims as sql
from slotbroker.store import pg_claims
from slotbroker.store.db import Database
from slotbroker.store.unit_of_work import UnitOfWork

T = TypeVar("T")

MAX_ATTEMPTS = 5
# SQLSTATEs worth retrying: serialization_failure, deadlock_detected, lock_not_available.
RETRY_SQLSTATES = frozenset({"40001", "40P01", "55P03"})


def is_retryable(exc: BaseException) -> bool:
    """A transient concurrency failure: retrying the whole transaction may succeed."""
    if not isinstance(exc, DBAPIError) or isinstance(exc, IntegrityError):
        return False
    orig = exc.orig
    if getattr(orig, "sqlstate", None) in RETRY_SQLSTATES:
        return True
    # SQLite: busy_timeout (30 s) expired or a lock upgrade was refused.
    text = str(orig).lower()
    return "database is locked" in text or "database table is locked" in text


def now_s() -> int:
    return int(time.time())


class ClaimService:
    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], int] = now_s,
        max_attempts: int = MAX_ATTEMPTS,
        round_trips: bool = True,
        pool_slots: int | None = None,
        policy: BookingPolicy | None = None,
    ) -> None:
        """``round_trips``: on PostgreSQL, claim in two round trips (``store/pg_claims.py``); off, or on
        SQLite, every claim takes the general path (``claim_in``). ``pool_slots``: how many claims
        ``claim_async`` runs at once per event loop (default: what the claims pool keeps)."""
        self.db = db
        self.clock = clock
        self.policy = policy or BookingPolicy()
        self.quotas = QuotaService(db)
        self.max_attempts = max_attempts
        self._pg = (
            pg_claims.Statements(db.engine.dialect)
            if round_trips and db.engine.dialect.name == "postgresql"
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

        fast = self._fast_for(request)

        def attempt(n: int) -> ClaimResult:
            if fast:
                for _ in range(2):  # a second go prepares the statements afresh
                    try:
                        done = self._claim_pg(request, now, n)
                    except pg_claims.StalePrepared:
                        continue
                    if done is not None:
                        return done
                    break
            return self._claim_once(request, now, n)

        try:
            return self._retrying(attempt)
        except IntegrityError as exc:
            raise _taken(request, exc) from None

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

        return self._retrying(attempt)

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

        return self._retrying(attempt)

    # -- composable steps (inside a caller's unit of work) ----------------------------------------------
    def claim_in(
        self, uow: UnitOfWork, request: ClaimRequest, *, now_s: int, attempts: int = 1
    ) -> ClaimResult:
        """The claim's statements inside ``uow``; the caller commits. Bumps the calendar generation
        as its last statement, so call it last in the transaction when you can (the calendar row is
        every writer's hot row)."""
        self.check(request, now_s)
        session = uow.session
        spec = request.consumer
        s, e = spec.start_s, spec.end_s
        locked = sql.lock_providers(session, {it.provider_uuid for it in request.items})
        wanted = checks.wanted_of(request, locked)
        state = sql.pair_states(session, wanted, s, e, now_s)
        errors = checks.capacity_errors(request, locked, state, wanted)
        vlan_items = [(i, it) for i, it in enumerate(request.items) if it.vlan_tag is not None]
        if vlan_items:
            held = sql.vlan_holders(
                session,
                [
                    (locked[it.provider_uuid].id, it.vlan_tag)
                    for _, it in vlan_items
                    if it.vlan_tag is not None
                ],
                s,
                e,
                now_s,
            )
            for i, it in vlan_items:
                prov = locked[it.provider_uuid]
                if (prov.id, it.vlan_tag) in held:
                    errors.append(
                        FieldError(
                            f"/items/{i}/vlan_tag",
                            f"VLAN {it.vlan_tag} on {prov.name} is taken in [{s}, {e})",
                        )
                    )
        if errors:
            raise CapacityConflict("claim does not fit", sorted(errors, key=checks.item_order))

        dead = [pair for pair, st in state.items() if st.usage.expired_holds]
        if dead:
            sql.reap_expired_holds(session, dead, s, e, now_s)
        values, rows = checks.writes(request, locked)
        consumer_id = sql.write_claim(session, values, rows, min(p.id for p in locked.values()))
        return checks.result(request, values, consumer_id, attempts)

    def _claim_pg(self, request: ClaimRequest, now_s: int, attempts: int) -> ClaimResult | None:
        """``claim_in`` plus COMMIT in two round trips (``store/pg_claims.py``): the same checks on the
        same rows, read under the same locks. None when the general path must do it: the project has a
        quota on a claimed class (the general path locks the quota rows and checks them), or expired
        holds to reap first (rare; the general path reaps them in its transaction)."""
        assert self._pg is not None
        session = pg_claims.Session(self.db.claims_engine.raw_connection(), self._pg)
        try:
            found = session.begin_read(_read(request, now_s))
            if found.quota:
                return None
            plan = checks.plan_write(request, found.locked, found.state)
            if plan is None:
                return None
            values, rows, shard = plan
            consumer_id = session.write_commit(sql.write_params(values, rows, shard), len(rows))
            return checks.result(request, values, consumer_id, attempts)
        finally:
            session.finish()

    async def _claim_pg_async(self, request: ClaimRequest, now_s: int, attempts: int) -> ClaimResult | None:
        """``_claim_pg`` on the event loop: the same steps, waiting on the socket instead of a thread."""
        assert self._pg is not None
        session = pg_claims.Session(self.db.claims_engine.raw_connection(), self._pg)
        try:
            found = await session.begin_read_async(_read(request, now_s))
            if found.quota:
                return None
            plan = checks.plan_write(request, found.locked, found.state)
            if plan is None:
                return None
            values, rows, shard = plan
            params = sql.write_params(values, rows, shard)
            consumer_id = await session.write_commit_async(params, len(rows))
            return checks.result(request, values, consumer_id, attempts)
        finally:
            await session.finish_async()

    async def claim_async(self, request: ClaimRequest, *, now_s: int | None = None) -> ClaimResult:
        """``claim`` for callers on an event loop (the API's claim fast path). On PostgreSQL, without
        VLAN tags, the claim runs on the loop itself (no worker thread), at most ``pool_slots`` at once
        so that the claims pool never makes the loop wait; anything else runs ``claim`` in a thread."""
        now = self.clock() if now_s is None else now_s
        if not self._fast_for(request):
            return await asyncio.to_thread(self.claim, request, now_s=now)
        self.check(request, now)
        last: BaseException | None = None
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop) or self._slots.setdefault(loop, asyncio.Semaphore(self.pool_slots))
        async with slots:
            for n in range(1, self.max_attempts + 1):
                try:
                    for _ in range(2):  # a second go prepares the statements afresh
                        try:
                            done = await self._claim_pg_async(request, now, n)
                        except pg_claims.StalePrepared:
                            continue
                        if done is not None:
                            return done
                        break
                    break  # the general path has to do it
                except IntegrityError as exc:
                    raise _taken(request, exc) from None
                except DBAPIError as exc:
                    if not is_retryable(exc):
                        raise
                    last = exc
                    await asyncio.sleep(backoff_s(n))
            else:
                raise ConcurrentUpdate(_GAVE_UP.format(self.max_attempts)) from last
        return await asyncio.to_thread(self._claim_general, request, now)

    def _fast_for(self, request: ClaimRequest) -> bool:
        return self._pg is not None and all(it.vlan_tag is None for it in request.items)

    def _claim_general(self, request: ClaimRequest, now: int) -> ClaimResult:
        try:
            return self._retrying(lambda n: self._claim_once(request, now, n))
        except IntegrityError as exc:
            raise _taken(request, exc) from None

    def _claim_once(self, request: ClaimRequest, now: int, attempts: int) -> ClaimResult:
        """One attempt of the general path: the project's quotas (their rows locked first, as leases
        and offers lock them), then ``claim_in``, in a unit of work of its own, committed."""
        with UnitOfWork(self.db) as uow:
            c = request.consumer
            self.quotas.check_in(uow, c.project, quota_items(request), c.start_s, c.end_s, now)
            result = self.claim_in(uow, request, now_s=now, attempts=attempts)
            uow.commit()
            return result

    def release_in(
        self,
        uow: UnitOfWork,
        consumer_uuid: str,
        *,
        status: ConsumerStatus = ConsumerStatus.RELEASED,
        now_s: int,
    ) -> ReleaseResult:
        if status not in RELEASE_STATUSES:
            allowed = ", ".join(sorted(RELEASE_STATUSES))
            raise ValidationFailed(
                f"cannot release into {status}", [FieldError("/status", f"one of {allowed}")]
            )
        done = sql.release_consumer(uow.session, consumer_uuid, status.value, now_s)
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

    # -- retries ----------------------------------------------------------------------------------------
    def _retrying(self, attempt: Callable[[int], T]) -> T:
        return retrying(attempt, self.max_attempts)


__all__ = ["ClaimService", "is_retryable"]


def _read(request: ClaimRequest, now_s: int) -> pg_claims.Read:
    """The first round trip's reads, keys in a stable order (so statements and locks repeat)."""
    c, items = request.consumer, request.items
    return pg_claims.Read(
        uuids=sorted({it.provider_uuid for it in items}),
        pairs=sorted({(it.provider_uuid, it.resource_class) for it in items}),
        start_s=c.start_s,
        end_s=c.end_s,
        now_s=now_s,
        n_items=len(items),
        project=c.project,
        classes=sorted({it.resource_class for it in items}),
    )


def quota_items(request: ClaimRequest) -> list[QuotaItem]:
    """The request's items as the quota sees them, each named by its pointer in the request."""
    return [QuotaItem(it.resource_class, it.amount, f"/items/{i}") for i, it in enumerate(request.items)]


def _taken(request: ClaimRequest, exc: IntegrityError) -> Exception:
    """A unique violation on the consumer's uuid is the caller's ``AlreadyExists``; others stay."""
    if request.consumer.uuid is not None and "uuid" in str(exc.orig).lower():
        return AlreadyExists(
            f"consumer {request.consumer.uuid} exists", [FieldError("/consumer/uuid", "taken")]
        )
    return exc


def backoff_s(n: int) -> float:
    """Jittered exponential backoff after the n-th lost attempt: 2, 4, 8, ... ms (times 0.5-1.5), so
    losers spread out."""
    return float(0.002 * 2 ** (n - 1) * (0.5 + random.random()))


_GAVE_UP = "gave up after {} attempts lost to concurrent writers; retry later"


def retrying(attempt: Callable[[int], T], max_attempts: int) -> T:
    """Run ``attempt(n)`` (one whole transaction) until it commits, retrying serialisation failures,
    deadlocks and lock timeouts up to ``max_attempts`` times, then answer ``ConcurrentUpdate``.
    Capacity conflicts are never retried: they are answers, not accidents."""
    last: BaseException | None = None
    for n in range(1, max_attempts + 1):
        try:
            return attempt(n)
        except DBAPIError as exc:
            if not is_retryable(exc):
                raise
            last = exc
            time.sleep(backoff_s(n))
    raise ConcurrentUpdate(_GAVE_UP.format(max_attempts)) from last
