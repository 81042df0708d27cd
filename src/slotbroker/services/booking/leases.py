"""Leases: a consumer of kind ``lease`` with its allocations, events and policies.

Create (explicit items through ``ClaimService.claim_in``, events scheduled in the same transaction),
read (project-scoped, keyset paging, iCalendar), update (extend, shorten, move a PENDING lease - all or
nothing, re-checked against the calendar in one transaction), cancel (idempotent) and mark as ERROR.
See docs/decisions/0010-leases.md.

Every writer locks the lease's consumer row first (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's
``BEGIN IMMEDIATE``), then its event rows, then providers (through ``claim_in``): the same order as the
event loop, so they cannot deadlock on each other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from slotbroker.domain.claims import (
    ClaimItem,
    ClaimRequest,
    ConsumerKind,
    ConsumerSpec,
    ConsumerStatus,
)
from slotbroker.domain.errors import (
    CapacityConflict,
    ConcurrentUpdate,
    FieldError,
    Forbidden,
    NotFound,
    ValidationFailed,
)
from slotbroker.domain.limits import BookingPolicy, time_problems
from slotbroker.domain.time import now_s
from slotbroker.domain.time import to_datetime as instant
from slotbroker.domain.time import to_epoch as epoch
from slotbroker.services.booking.alternates import claim_for_lease_swapping
from slotbroker.services.booking.claims import ClaimService
from slotbroker.services.booking.ical import render_ical
from slotbroker.services.booking.lease_events import (
    CANCELLED,
    ERROR,
    Hook,
    LeaseEvent,
    LeaseHooks,
    fire_in,
    record_transition,
)
from slotbroker.services.booking.lease_headroom import add_max_end
from slotbroker.services.booking.lease_presenters import lease_views
from slotbroker.services.booking.lease_schedule import (
    cancel_lease_events,
    schedule_lease_events,
    schedule_new_lease_events,
)
from slotbroker.services.booking.quotas import QuotaItem, QuotaService
from slotbroker.services.retry import MAX_ATTEMPTS, retrying
from slotbroker.store.db import Database
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire.leases import (
    CreateLease,
    LeaseList,
    LeaseView,
    UpdateLease,
)

T = TypeVar("T")

ICAL_LIMIT = 5000
LIVE_LEASE = (ConsumerStatus.PENDING.value, ConsumerStatus.ACTIVE.value)


LeasePolicy = BookingPolicy  # the one booking policy (domain/limits.py), under the name callers know


def _invalid_state(detail: str) -> ConcurrentUpdate:
    return ConcurrentUpdate(detail, code="invalid_state")


class LeaseService:
    """The lease use cases. ``project=None`` means an admin (every project); otherwise only that
    project's leases exist for the caller (others are ``NotFound``)."""

    def __init__(
        self,
        db: Database,
        claims: ClaimService,
        quotas: QuotaService,
        *,
        policy: LeasePolicy | None = None,
        hooks: LeaseHooks | None = None,
        clock: Callable[[], int] = now_s,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.db = db
        self.claims = claims
        self.quotas = quotas
        self.policy = policy or claims.policy
        self.hooks = hooks or LeaseHooks()
        self.clock = clock
        self.max_attempts = max_attempts
        self.ical_limit = ICAL_LIMIT

    def on_event(self, kind: str, callback: Hook) -> None:
        """Register ``callback(uow, LeaseEvent)`` for ``start``, ``before_end``, ``end``, ``cancelled``
        or ``error``; it runs inside the transaction that makes the transition."""
        self.hooks.on_event(kind, callback)

    # -- create ---------------------------------------------------------------------------------------------
    def create(self, body: CreateLease, *, project: str, now_s: int | None = None) -> LeaseView:
        """Claim the items for [start, end) as a new lease of ``project`` (PENDING, or ACTIVE when it
        starts now or earlier - a start in the past is moved to now) with its events, in one transaction.

        Raises ``ValidationFailed``, ``CapacityConflict``, ``Forbidden`` (``lease_too_long``,
        ``quota_exceeded``) or ``ConcurrentUpdate``."""
        now = self.clock() if now_s is None else now_s
        start, end = max(epoch(body.start), now), epoch(body.end)
        _check_times(("/start", start), ("/end", end))
        if end <= start:
            raise ValidationFailed(
                "the lease must end after it starts (and after now)", [FieldError("/end", "not after start")]
            )
        self._check_duration(start, end)
        items = tuple(
            ClaimItem(str(it.provider_uuid), it.resource_class, it.amount, it.vlan_tag) for it in body.items
        )
        active = start <= now
        # Born PENDING; a lease that starts now fires its start event in the same transaction, so it
        # is returned ACTIVE with the transition (and the start hooks) recorded like any other start.
        spec = ConsumerSpec(ConsumerKind.LEASE, project, start, end, name=body.name)
        request = ClaimRequest(spec, items)
        problems = request.problems(now)
        if problems:
            raise ValidationFailed("invalid lease", problems)

        def attempt() -> LeaseView:
            with UnitOfWork(self.db) as uow:
                self.quotas.check_in(uow, project, _quota_items(items), start, end, now)
                result = self.claims.claim_in(uow, request, now_s=now)
                schedule_new_lease_events(
                    uow, result.consumer_id, start, end, self.policy.before_end_notice_s
                )
                if active:
                    self._fire_due_now(uow, result.consumer_id, result.consumer_uuid, project, now)
                # read in the writing transaction: what it wrote, without a second transaction to read it
                view = lease_views(uow, [self._find(uow, result.consumer_uuid, None)])[0]
                uow.commit()
                return view

        return self._retrying(attempt)

    def _fire_due_now(self, uow: UnitOfWork, consumer_id: int, lease_id: str, project: str, now: int) -> None:
        """A lease that starts at once: its start event fires in the creating transaction (so its
        hooks run and the ACTIVE transition is recorded once, at creation)."""
        row = uow.leases.unfired_event(consumer_id, "start")
        if row is not None:
            fire_in(
                uow,
                self.claims,
                self.hooks,
                event_id=int(row.id),
                consumer_id=consumer_id,
                lease_id=lease_id,
                project=project,
                kind="start",
                due_s=int(row.due_s),
                now_s=now,
            )

    # -- read -----------------------------------------------------------------------------------------------
    def get(self, lease_id: str, *, project: str | None) -> LeaseView:
        with UnitOfWork(self.db, readonly=True) as uow:
            row = self._find(uow, lease_id, project)
            return lease_views(uow, [row])[0]

    def list(
        self,
        *,
        project: str | None,
        status: Sequence[str] | None = None,
        start_s: int | None = None,
        end_s: int | None = None,
        cursor: str | None = None,
        limit: int = 100,
        named: str | None = None,
        site: str | None = None,
    ) -> LeaseList:
        """Leases newest first, ``limit`` at a time. The cursor is the last id returned (keyset), so
        pages stay stable while leases are created: the walk goes on from where it was, none is skipped
        or repeated (leases created meanwhile are newer than the first page, so a new walk shows them).
        ``start_s`` / ``end_s``: only leases overlapping [start_s, end_s); ``named``: whose name or id
        starts with it (any case); ``site``: holding a host, port or link end at that site."""
        before: int | None = None
        if cursor:
            try:
                before = int(cursor)
            except ValueError:
                raise ValidationFailed(
                    "bad cursor", [FieldError("#/query/cursor", "pass next_cursor as given")]
                ) from None
        with UnitOfWork(self.db, readonly=True) as uow:
            rows = uow.leases.page(
                project=project,
                status=status,
                start_s=start_s,
                end_s=end_s,
                before=before,
                limit=limit + 1,
                named=named,
                site=site,
            )
            more = len(rows) > limit
            rows = rows[:limit]
            views = lease_views(uow, rows)
        return LeaseList(items=views, next_cursor=str(rows[-1].id) if more and rows else None)

    def ical(
        self, *, project: str | None, status: Sequence[str] | None = None, now_s: int | None = None
    ) -> str:
        """The caller's leases as an iCalendar (RFC 5545) feed: the newest ``ical_limit``, and when there
        are more, a note in the calendar saying so."""
        now = self.clock() if now_s is None else now_s
        with UnitOfWork(self.db, readonly=True) as uow:
            rows = uow.leases.newest(project=project, status=status, limit=self.ical_limit)
            total = uow.leases.count(project=project, status=status) if len(rows) >= self.ical_limit else None
            views = lease_views(uow, rows)
        name = f"slotbroker leases ({project})" if project else "slotbroker leases"
        return render_ical(views, now=instant(now), name=name, total=total)

    def ical_one(self, lease_id: str, *, project: str | None, now_s: int | None = None) -> str:
        """One lease as an iCalendar (RFC 5545) document with a single event."""
        now = self.clock() if now_s is None else now_s
        view = self.get(lease_id, project=project)
        return render_ical([view], now=instant(now), name=f"slotbroker lease {view.name or view.id}")

    # -- update ---------------------------------------------------------------------------------------------
    def update(
        self, lease_id: str, body: UpdateLease, *, project: str | None, now_s: int | None = None
    ) -> LeaseView:
        """Extend, shorten or move (PENDING only) a lease, all or nothing (compare-and-swap on
        ``generation``). Capacity is re-checked in the same transaction: an extension claims only the
        added time; a move releases the old allocations and claims the new interval (so what the old
        interval freed is usable), swapping hosts that no longer fit for alternates if allowed.

        Raises ``NotFound``, ``ConcurrentUpdate`` (stale generation, code ``concurrent_update``; lease not
        PENDING/ACTIVE, code ``invalid_state``), ``ValidationFailed``, ``CapacityConflict`` (including code
        ``outside_extension_window``), ``Forbidden`` (``lease_too_long``, ``quota_exceeded``)."""
        now = self.clock() if now_s is None else now_s

        def attempt() -> None:
            with UnitOfWork(self.db) as uow:
                self._update_in(uow, lease_id, body, project, now)
                uow.commit()

        try:
            self._retrying(attempt)
        except (CapacityConflict, Forbidden) as exc:
            if body.end is not None and body.start is None:
                add_max_end(exc, self.db, self.policy, lease_id, epoch(body.end), now)
            raise
        return self.get(lease_id, project=project)

    def move_in(
        self, uow: UnitOfWork, lease_id: str, body: UpdateLease, items: tuple[ClaimItem, ...], now: int
    ) -> None:
        """Move a PENDING lease to ``body``'s times onto ``items`` inside the caller's transaction:
        ``update``'s checks, quotas, claim (with ``body.allow_host_swap``), generation compare-and-swap
        and events."""
        self._update_in(uow, lease_id, body, None, now, items=items)

    def _update_in(
        self,
        uow: UnitOfWork,
        lease_id: str,
        body: UpdateLease,
        project: str | None,
        now: int,
        *,
        items: tuple[ClaimItem, ...] | None = None,
    ) -> None:
        """``update``'s transaction; ``items``: what a PENDING lease's move claims instead of what it
        holds (compaction moves a lease onto the hosts find-slot chose, booking/lease_compact.py)."""
        row = self._find(uow, lease_id, project, lock=True)
        if row.generation != body.generation:
            raise ConcurrentUpdate(
                f"lease {lease_id} is at generation {row.generation}, not {body.generation}; re-read it",
                [FieldError("/generation", f"stale; current {row.generation}")],
            )
        renamed = body.name is not None and body.name != row.name
        if renamed:
            uow.leases.set_name(int(row.id), str(body.name))
        if body.start is None and body.end is None:  # a rename only: whatever the status
            if renamed:
                uow.leases.bump_generation(int(row.id))
            return
        if row.status not in LIVE_LEASE:
            raise _invalid_state(f"lease {lease_id} is {row.status}; only PENDING or ACTIVE leases change")
        old_start, old_end = int(row.start_s), int(row.end_s)
        if old_end <= now:
            raise _invalid_state(f"lease {lease_id} has reached its end; it can no longer change")
        start = old_start if body.start is None else epoch(body.start)
        end = old_end if body.end is None else epoch(body.end)
        _check_times(("/start", start), ("/end", end))
        pending = row.status == ConsumerStatus.PENDING.value
        errors: list[FieldError] = []
        if start != old_start and not pending:
            errors.append(FieldError("/start", "an ACTIVE lease has started; only its end can change"))
        elif start != old_start and start < now:
            errors.append(FieldError("/start", f"cannot move a lease into the past (now {now})"))
        if end <= max(start, now):
            errors.append(FieldError("/end", "must be after the start and after now"))
        if errors:
            raise ValidationFailed("invalid lease update", errors)
        if (start, end) == (old_start, old_end):
            if renamed:
                uow.leases.bump_generation(int(row.id))
            return
        self._check_duration(start, end)
        window = self.policy.extension_window_s
        if start == old_start and end > old_end and window > 0 and now < old_end - window:
            raise CapacityConflict(
                f"a lease may be extended only in the last {window} s before its end "
                f"(from {instant(old_end - window).isoformat()})",
                [FieldError("/end", "outside the extension window")],
                code="outside_extension_window",
            )
        consumer_id = int(row.id)
        if items is None or not pending:
            items = _items_of(uow, consumer_id, old_end)
        if pending:
            # Move (or resize) a lease that has not started: free the old interval, claim the new one.
            uow.leases.free_rows(consumer_id)
            self.quotas.check_in(uow, row.project, _quota_items(items), start, end, now)
            claim_for_lease_swapping(
                self.claims,
                uow,
                consumer_id,
                row.project,
                items,
                (start, end),
                now,
                swap=body.allow_host_swap,
            )
        elif end > old_end:
            # Extend an ACTIVE lease: claim only the added time, then stretch its rows over it.
            self.quotas.check_in(uow, row.project, _quota_items(items), old_end, end, now)
            claim_for_lease_swapping(
                self.claims, uow, consumer_id, row.project, items, (old_end, end), now, swap=False, merge=True
            )
        else:
            # Shorten an ACTIVE lease: only frees capacity, always fits.
            uow.leases.shorten_rows(consumer_id, end)
            uow.calendar.bump()
        if not uow.leases.set_times(
            consumer_id, body.generation, start, end
        ):  # pragma: no cover - the row lock (or BEGIN IMMEDIATE) prevents this
            raise ConcurrentUpdate(f"lease {lease_id} changed concurrently; re-read it")
        schedule_lease_events(uow, consumer_id, start, end, self.policy.before_end_notice_s)

    # -- cancel / error -------------------------------------------------------------------------------------
    def cancel(self, lease_id: str, *, project: str | None, now_s: int | None = None) -> LeaseView:
        """Cancel a PENDING, ACTIVE or ERROR lease: its allocations are released at once (status
        CANCELLED), its unfired events dropped, ``cancelled`` hooks run. Cancelling a CANCELLED lease
        changes nothing; an ENDED lease is ``invalid_state`` (409)."""
        now = self.clock() if now_s is None else now_s

        def attempt() -> LeaseView:
            with UnitOfWork(self.db) as uow:
                row = self._find(uow, lease_id, project, lock=True)
                if row.status == ConsumerStatus.CANCELLED.value:
                    return lease_views(uow, [row])[0]
                if row.status == ConsumerStatus.ENDED.value:
                    raise _invalid_state(f"lease {lease_id} has ended; there is nothing to cancel")
                cancel_lease_events(uow, int(row.id))
                self.claims.release_in(uow, lease_id, status=ConsumerStatus.CANCELLED, now_s=now)
                record_transition(uow, self.hooks, int(row.id), lease_id, row.project, CANCELLED, now)
                # read in the writing transaction, as ``create`` does: no second transaction to read it
                view = lease_views(uow, [self._find(uow, lease_id, None)])[0]
                uow.commit()
                return view

        return self._retrying(attempt)

    def mark_error(self, lease_id: str, reason: str = "", *, now_s: int | None = None) -> LeaseView:
        """Put a PENDING or ACTIVE lease into ERROR (for the planner/provisioners). It keeps its capacity
        until it is cancelled or its end event releases it; ``error`` hooks run."""
        now = self.clock() if now_s is None else now_s

        def attempt() -> None:
            with UnitOfWork(self.db) as uow:
                row = self._find(uow, lease_id, None, lock=True)
                if row.status == ConsumerStatus.ERROR.value:
                    return
                if row.status not in LIVE_LEASE:
                    raise _invalid_state(f"lease {lease_id} is {row.status}")
                uow.leases.set_status(int(row.id), ConsumerStatus.ERROR)
                record_transition(uow, self.hooks, int(row.id), lease_id, row.project, ERROR, now)
                uow.commit()

        self._retrying(attempt)
        return self.get(lease_id, project=None)

    # -- helpers --------------------------------------------------------------------------------------------
    def _check_duration(self, start: int, end: int) -> None:
        self.policy.check(start, end, start, end_at="/end")

    @staticmethod
    def _find(uow: UnitOfWork, lease_id: str, project: str | None, *, lock: bool = False) -> Any:
        row = uow.leases.find(lease_id, lock=lock)
        if row is None or (project is not None and row.project != project):
            raise NotFound(f"no lease {lease_id}")
        return row

    def _retrying(self, attempt: Callable[[], T]) -> T:
        return retrying(lambda _n: attempt(), self.max_attempts)


# -- module helpers -----------------------------------------------------------------------------------------


def _check_times(*times: tuple[str, int]) -> None:
    errors = time_problems(*times)
    if errors:
        raise ValidationFailed("times outside the supported range", errors)


def _quota_items(items: Sequence[ClaimItem]) -> list[QuotaItem]:
    return [QuotaItem(it.resource_class, it.amount, f"/items/{i}") for i, it in enumerate(items)]


def _items_of(uow: UnitOfWork, consumer_id: int, lease_end: int) -> tuple[ClaimItem, ...]:
    """What the lease holds now: its rows that run to the lease's end. A lease the planner moved to
    another host while ACTIVE keeps its old host's past rows (cut at the move), which are history, not
    something to extend or move (services/booking/lease_rehost.py)."""
    return tuple(ClaimItem(*row) for row in uow.leases.items_to(consumer_id, lease_end))


__all__ = [
    "LeaseEvent",
    "LeasePolicy",
    "LeaseService",
]
