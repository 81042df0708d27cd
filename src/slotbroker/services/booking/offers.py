"""Offers (IVOA ExecutionBroker style): windows turned into holds that expire; accepting one makes a lease.

``OfferService.create`` searches the request once per strategy (earliest, largest, longest, best_fit),
takes the strategies' windows in turn and holds each with ``ClaimService.claim_in`` (a hold consumer with
``expires_s``) in the same transaction that records the offer. The claim is the authority: a window
whose claim conflicts (another offer of this set, another set, a racing replica) first tries the
window's alternate hosts, then the strategy searches again against the refreshed calendar (which now
counts every open hold) and so is pushed past capacity already on offer (``offer_search.OfferMaker``).

Every offer-set transition locks the offer-set row first (``SELECT ... FOR UPDATE``; SQLite's
``BEGIN IMMEDIATE`` serialises writers anyway), then offers, then consumers, so accept, reject and
expiry of one set are serialised and cannot deadlock with each other. The hold -> lease step of an accept
is a guarded UPDATE (``kind = 'hold' AND status = 'HELD' AND expires_s > now``), so it cannot race the
claims' hold reaper either: exactly one of them changes the consumer. See docs/decisions/0009-offers.md.
"""

from __future__ import annotations

import json
import uuid as uuidlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import TypeVar

from slotbroker.domain.claims import (
    ClaimRequest,
    ConsumerKind,
    ConsumerSpec,
    ConsumerStatus,
)
from slotbroker.domain.errors import (
    FieldError,
    NotFound,
    ValidationFailed,
)
from slotbroker.domain.time import now_s, to_datetime
from slotbroker.services.booking.claims import ClaimService
from slotbroker.services.booking.lease_schedule import schedule_lease_events
from slotbroker.services.booking.offer_search import OfferMaker, Plan
from slotbroker.services.booking.offer_states import (
    OFFER_EXPIRED,
    OfferConflict,
    not_open,
    offer_view,
    set_status,
)
from slotbroker.services.booking.quotas import QuotaItem, QuotaService
from slotbroker.services.find_slot.service import FindSlotService
from slotbroker.services.retry import retrying
from slotbroker.store.db import Database
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire.find_slot import (
    ExplanationView,
    PortView,
    RouteView,
)
from slotbroker.wire.offers import (
    AcceptedLease,
    OfferSetRequest,
    OfferSetStatus,
    OfferSetView,
    OfferState,
    OfferView,
    Strategy,
)

T = TypeVar("T")

MAX_ATTEMPTS = 5
SWEEP_LIMIT = 500


@dataclass(frozen=True)
class OfferSettings:
    ttl_s: int = 300  # how long an offer holds its capacity (Settings.offer_ttl_s)
    before_end_notice_s: int = 3600  # the accepted lease's before_end event (Settings.before_end_notice_s)
    max_attempts: int = MAX_ATTEMPTS


# -- the service -------------------------------------------------------------------------------------------


class OfferService:
    def __init__(
        self,
        db: Database,
        claims: ClaimService,
        find_slot: FindSlotService,
        settings: OfferSettings | None = None,
        *,
        quotas: QuotaService | None = None,
        clock: Callable[[], int] = now_s,
    ) -> None:
        self.db = db
        self.claims = claims
        self.find_slot = find_slot
        self.settings = settings or OfferSettings()
        self.quotas = quotas
        self.clock = clock

    # -- create -----------------------------------------------------------------------------------------
    def create(self, body: OfferSetRequest, *, project: str, now_s: int | None = None) -> OfferSetView:
        """Search, hold up to ``max_offers`` offers (each its own transaction) and record the set.

        Raises ``ValidationFailed`` (pointers under ``/request``) when the find-slot request is invalid,
        ``Forbidden`` (``lease_too_long``) when even its shortest window breaks the booking policy.
        A set where nothing fits is ``EMPTY`` and carries the search's explanation.
        """
        now = self.clock() if now_s is None else now_s
        try:
            req = self.find_slot.parse(body.request, now_s=now)
        except ValidationFailed as exc:
            raise ValidationFailed(
                exc.detail, [FieldError(f"/request{f.pointer}", f.detail) for f in exc.errors]
            ) from None
        # the booking policy up front: a search whose every window is too long to hold offers nothing
        fixed = req.min_duration_s == req.max_duration_s
        at = "/request/duration" if fixed else "/request/min_duration"
        self.claims.policy.check(now, now + req.min_duration_s, now, end_at=at)
        doc = self.find_slot.clamp(body.request, req, now)
        strategies = list(dict.fromkeys(body.strategies))
        expires = now + self.settings.ttl_s
        set_id = str(uuidlib.uuid4())
        with UnitOfWork(self.db) as uow:
            uow.offers.add_set(
                set_id,
                project,
                OfferSetStatus.OPEN.value,
                json.dumps({"request": doc, "strategies": strategies, "max_offers": body.max_offers}),
                expires,
                name=body.name,
            )
            uow.commit()

        def hold(plan: Plan, position: int) -> str:
            return self.hold(
                plan, set_id=set_id, position=position, project=project, expires_s=expires, now=now
            )

        maker = OfferMaker(self.db, self.find_slot, hold, set_id, doc, req, body.max_offers, now)
        made = maker.run(strategies)
        if not made and maker.refused is not None:  # nothing fits the project's quota: say so
            with UnitOfWork(self.db) as uow:
                uow.offers.drop_set(set_id)
                uow.commit()
            raise maker.refused
        with UnitOfWork(self.db) as uow:
            uow.offers.lock_sets([set_id])
            stored = json.loads(uow.offers.set_request(set_id) or "{}")
            if maker.explanation is not None and not made:
                stored["explanation"] = maker.explanation.model_dump(mode="json")
            _refresh_sets(uow, [set_id], request=json.dumps(stored))
            uow.commit()
        return self.offer_set(set_id, project=None, now_s=now)

    def hold(self, plan: Plan, *, set_id: str, position: int, project: str, expires_s: int, now: int) -> str:
        """Claim ``plan`` as a hold and record it as offer ``position`` in one transaction; its id.

        Raises ``CapacityConflict`` or ``ValidationFailed`` from the claim, or ``Forbidden``
        (``quota_exceeded``: holds count against the project's quotas); nothing is written then."""
        offer_id = str(uuidlib.uuid4())
        spec = ConsumerSpec(
            kind=ConsumerKind.HOLD,
            project=project,
            start_s=plan.start_s,
            end_s=plan.end_s,
            expires_s=expires_s,
            name=f"offer {offer_id}",
        )
        request = ClaimRequest(spec, tuple(plan.items))

        def attempt(n: int) -> str:
            with UnitOfWork(self.db) as uow:
                if self.quotas is not None:
                    quota_items = [
                        QuotaItem(it.resource_class, it.amount, f"/items/{i}")
                        for i, it in enumerate(plan.items)
                    ]
                    self.quotas.check_in(uow, project, quota_items, plan.start_s, plan.end_s, now)
                got = self.claims.claim_in(uow, request, now_s=now, attempts=n)
                uow.offers.add_offer(
                    id=offer_id,
                    offer_set_id=set_id,
                    position=position,
                    strategy=plan.strategy.value,
                    state=OfferState.OFFERED.value,
                    consumer_id=got.consumer_id,
                    window=json.dumps(plan.document()),
                    expires_s=expires_s,
                )
                uow.commit()
                return offer_id

        return self._retrying(attempt)

    # -- reads ------------------------------------------------------------------------------------------
    def offer_set(self, set_id: str, *, project: str | None, now_s: int | None = None) -> OfferSetView:
        """The set and its offers (``project`` None: any project). Expires what is past due first."""
        now = self.clock() if now_s is None else now_s
        self._expire_if_due(set_id, now)
        with UnitOfWork(self.db, readonly=True) as uow:
            row = uow.offers.get_set(set_id)
            if row is None or (project is not None and row.project != project):
                raise NotFound(f"no offer set {set_id}")
            offers = uow.offers.offers_in(set_id)
            stored = json.loads(row.request or "{}")
            why = stored.get("explanation")
            return OfferSetView(
                id=row.id,
                name=str(row.name or ""),
                status=OfferSetStatus(row.status),
                project=row.project,
                created=row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC),
                expires=to_datetime(row.expires_s),
                strategies=[Strategy(s) for s in stored.get("strategies", [])],
                offers=[offer_view(o) for o in offers],
                explanation=ExplanationView.model_validate(why) if why else None,
                href=f"/v1/offer-sets/{row.id}",
            )

    def offer(self, offer_id: str, *, project: str | None, now_s: int | None = None) -> OfferView:
        now = self.clock() if now_s is None else now_s
        set_id = self._set_of(offer_id, project)
        self._expire_if_due(set_id, now)
        with UnitOfWork(self.db, readonly=True) as uow:
            rows = [o for o in uow.offers.offers_in(set_id) if o.id == offer_id]
            if not rows:
                raise NotFound(f"no offer {offer_id}")
            return offer_view(rows[0])

    # -- accept / reject --------------------------------------------------------------------------------
    def accept(self, offer_id: str, *, project: str | None, now_s: int | None = None) -> AcceptedLease:
        """Turn the offer's hold into a lease, reject its siblings and schedule the lease's events, in one
        transaction. Raises ``OfferConflict`` (``offer_expired`` / ``offer_not_open``) or ``NotFound``."""
        now = self.clock() if now_s is None else now_s
        set_id = self._set_of(offer_id, project)

        def attempt(_: int) -> AcceptedLease | OfferConflict:
            with UnitOfWork(self.db) as uow:
                uow.offers.lock_sets([set_id])
                self._expire_in(uow, now, [set_id])
                offer = uow.offers.get_offer(offer_id)
                if offer.state != OfferState.OFFERED:
                    uow.commit()  # keep any expiry just recorded, though the accept is refused
                    return not_open(offer_id, offer.state)
                lease = uow.offers.hold_to_lease(offer.consumer_id, now)
                if lease is None:  # the hold expired or was released under us (the reaper won)
                    self._expire_in(uow, now, [set_id])
                    uow.commit()
                    return OfferConflict(f"offer {offer_id} expired", code=OFFER_EXPIRED)
                window = json.loads(offer.window)
                uow.leases.set_placement(int(lease.id), json.dumps(window["placement"]))
                # the lease is what the user named the set for ("" when unnamed: "offer <id>" named the hold)
                uow.leases.set_name(int(lease.id), str(uow.offers.get_set(set_id).name or ""))
                siblings = uow.offers.accept(offer_id, set_id)
                freed = self._release(uow, siblings, ConsumerStatus.REJECTED, now)
                _refresh_sets(uow, [set_id])
                schedule_lease_events(
                    uow,
                    int(lease.id),
                    int(lease.start_s),
                    int(lease.end_s),
                    self.settings.before_end_notice_s,
                )
                if not freed:
                    uow.calendar.bump()
                uow.commit()
                return AcceptedLease(
                    uuid=lease.uuid,
                    status=lease.status,
                    project=lease.project,
                    start=to_datetime(int(lease.start_s)),
                    end=to_datetime(int(lease.end_s)),
                    duration_s=int(lease.end_s) - int(lease.start_s),
                    placement=window["placement"],
                    sites=window["sites"],
                    resources=window["resources"],
                    routes=[RouteView.model_validate(r) for r in window["routes"]],
                    ports=[PortView.model_validate(p) for p in window["ports"]],
                    offer_id=offer_id,
                    offer_set_id=set_id,
                )

        got = self._retrying(attempt)
        if isinstance(got, OfferConflict):
            raise got
        return got

    def reject(self, offer_id: str, *, project: str | None, now_s: int | None = None) -> OfferView:
        """Release the offer's hold at once. Idempotent: a rejected or expired offer is returned as it is;
        an accepted one is ``offer_not_open`` (cancel the lease instead)."""
        now = self.clock() if now_s is None else now_s
        set_id = self._set_of(offer_id, project)

        def attempt(_: int) -> OfferConflict | None:
            with UnitOfWork(self.db) as uow:
                uow.offers.lock_sets([set_id])
                self._expire_in(uow, now, [set_id])
                got = uow.offers.reject(offer_id)
                if got is None:
                    state = uow.offers.offer_state(offer_id)
                    if state == OfferState.ACCEPTED:
                        return not_open(offer_id, state)
                elif got.consumer_id is not None:
                    self._release(uow, [int(got.consumer_id)], ConsumerStatus.REJECTED, now)
                _refresh_sets(uow, [set_id])
                uow.commit()
                return None

        refused = self._retrying(attempt)
        if refused is not None:
            raise refused
        return self.offer(offer_id, project=project, now_s=now)

    # -- expiry -----------------------------------------------------------------------------------------
    def expire_due(self, now_s: int | None = None, *, limit: int = SWEEP_LIMIT) -> int:
        """Sweeper: mark offers past their expiry (or whose hold is gone) EXPIRED, release their holds
        exactly once and update their sets; how many offers expired."""
        now = self.clock() if now_s is None else now_s
        with UnitOfWork(self.db, readonly=True) as uow:
            sets = self.due_sets(uow, now, limit=limit)
        return self.expire_sets(now, sets)

    def due_sets(self, uow: UnitOfWork, now_s: int, *, limit: int = SWEEP_LIMIT) -> list[str]:
        """The sweep's read, in the caller's transaction (no locks): the sets with due offers, sorted
        (the lock order). The lease event loop runs it in the read it does every tick anyway."""
        return sorted({str(r.offer_set_id) for r in uow.offers.due(now_s, limit=limit)})

    def expire_sets(self, now_s: int, sets: Sequence[str]) -> int:
        """The sweep's work on what ``due_sets`` read: lock the sets, expire what is still due in them
        (re-read under the locks), release the holds; how many offers expired."""
        if not sets:
            return 0
        now = now_s

        def attempt(_: int) -> int:
            with UnitOfWork(self.db) as uow:
                uow.offers.lock_sets(sets)
                n = self._expire_in(uow, now, sets)
                uow.commit()
                return n

        return self._retrying(attempt)

    def _expire_if_due(self, set_id: str, now: int) -> None:
        with UnitOfWork(self.db, readonly=True) as uow:
            if not uow.offers.due(now, set_ids=[set_id]):
                return

        def attempt(_: int) -> None:
            with UnitOfWork(self.db) as uow:
                uow.offers.lock_sets([set_id])
                self._expire_in(uow, now, [set_id])
                uow.commit()

        self._retrying(attempt)

    def _expire_in(self, uow: UnitOfWork, now: int, set_ids: Sequence[str]) -> int:
        """Inside a transaction that holds the sets' locks: expire their due offers, release the holds."""
        due = uow.offers.due(now, set_ids=set_ids)
        if not due:
            return 0
        done = uow.offers.expire([str(r.id) for r in due], now)
        self._release(
            uow, [int(r.consumer_id) for r in done if r.consumer_id is not None], ConsumerStatus.EXPIRED, now
        )
        _refresh_sets(uow, sorted({str(r.offer_set_id) for r in done}))
        return len(done)

    # -- helpers ----------------------------------------------------------------------------------------
    def _release(self, uow: UnitOfWork, consumer_ids: list[int], status: ConsumerStatus, now: int) -> int:
        """Release the consumers (id order), each exactly once; how many this call changed."""
        if not consumer_ids:
            return 0
        changed = 0
        for consumer_uuid in uow.offers.consumer_uuids(consumer_ids):
            got = self.claims.release_in(uow, consumer_uuid, status=status, now_s=now)
            changed += not got.already_released
        return changed

    def _set_of(self, offer_id: str, project: str | None) -> str:
        with UnitOfWork(self.db, readonly=True) as uow:
            row = uow.offers.set_of(offer_id)
        if row is None or (project is not None and row.project != project):
            raise NotFound(f"no offer {offer_id}")
        return str(row.offer_set_id)

    def _retrying(self, attempt: Callable[[int], T]) -> T:
        return retrying(attempt, self.settings.max_attempts)


def _refresh_sets(uow: UnitOfWork, set_ids: Sequence[str], *, request: str | None = None) -> None:
    """Each set's status from its offers' states (``set_status``), next generation."""
    for sid in set_ids:
        uow.offers.mark_set(sid, set_status(uow.offers.states_in(sid)).value, request=request)


__all__ = ["OfferService", "OfferSettings"]
