"""Changes to an offer set after it is made: a new name, and more time to decide (renewal).

Renewal keeps the set's live offers (and their holds) for another ``SLOTBROKER_OFFER_TTL_S`` from now,
never past ``created + max_hold_s`` (the booking policy's bound on holding capacity without booking it:
without it one caller could renew a hold forever and keep capacity from everyone). Only holds still
live are renewed, by an UPDATE guarded like an accept (``uow.offers.renew``), so a hold that expired -
whose capacity a claim may already have taken - is never revived.
"""

from __future__ import annotations

from collections.abc import Callable

from slotbroker.domain.errors import NotFound
from slotbroker.domain.limits import BookingPolicy
from slotbroker.domain.time import now_s, to_datetime, to_epoch
from slotbroker.services.booking.offer_states import OFFER_EXPIRED, OFFER_NOT_OPEN, OfferConflict
from slotbroker.services.booking.offers import OfferService
from slotbroker.services.retry import retrying
from slotbroker.store.db import Database
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire.offers import OfferSetStatus, OfferSetView


class OfferSetEditor:
    def __init__(
        self,
        db: Database,
        offers: OfferService,
        policy: BookingPolicy,
        *,
        clock: Callable[[], int] = now_s,
    ) -> None:
        self.db = db
        self.offers = offers
        self.policy = policy
        self.clock = clock

    def rename(self, set_id: str, name: str, *, project: str | None) -> OfferSetView:
        self._visible(set_id, project)

        def attempt(_: int) -> None:
            with UnitOfWork(self.db) as uow:
                uow.offers.lock_sets([set_id])
                uow.offers.rename_set(set_id, name)
                uow.commit()

        retrying(attempt, self.offers.settings.max_attempts)
        return self.offers.offer_set(set_id, project=project)

    def renew(self, set_id: str, *, project: str | None, now_s: int | None = None) -> OfferSetView:
        """Keep the set's OFFERED offers ``ttl_s`` longer from now (see the module). Raises ``NotFound``,
        or ``OfferConflict``: ``offer_not_open`` (nothing left to renew) or ``offer_expired``."""
        now = self.clock() if now_s is None else now_s
        view = self.offers.offer_set(set_id, project=project, now_s=now)  # expires what is due first
        if view.status != OfferSetStatus.OPEN:
            code = OFFER_EXPIRED if view.status == OfferSetStatus.EXPIRED else OFFER_NOT_OPEN
            raise OfferConflict(f"offer set {set_id} is {view.status.value}; nothing to renew", code=code)
        until = now + self.offers.settings.ttl_s
        cap = to_epoch(view.created) + self.policy.max_hold_s if self.policy.max_hold_s > 0 else until
        if until <= to_epoch(view.expires) < cap:
            return view  # already held that long: nothing to do
        until = min(until, cap)
        if until <= to_epoch(view.expires):
            raise OfferConflict(
                f"offer set {set_id} cannot be kept past {to_datetime(until).isoformat()} "
                f"(offers are held at most {self.policy.max_hold_s} s after they are made)",
                code=OFFER_NOT_OPEN,
                extensions={"max_expires": to_datetime(until).isoformat()},
            )

        def attempt(_: int) -> int:
            with UnitOfWork(self.db) as uow:
                uow.offers.lock_sets([set_id])
                renewed = uow.offers.renew(set_id, now, until)
                uow.commit()
                return renewed

        if not retrying(attempt, self.offers.settings.max_attempts):
            raise OfferConflict(f"offer set {set_id} has no live offer left to renew", code=OFFER_EXPIRED)
        return self.offers.offer_set(set_id, project=project, now_s=now)

    def _visible(self, set_id: str, project: str | None) -> None:
        with UnitOfWork(self.db, readonly=True) as uow:
            row = uow.offers.get_set(set_id)
        if row is None or (project is not None and row.project != project):
            raise NotFound(f"no offer set {set_id}")


__all__ = ["OfferSetEditor"]
