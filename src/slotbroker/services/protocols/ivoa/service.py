"""The ExecutionBroker use cases over offers and leases: a request becomes an offer set, a session is an
offer (same uuid), an accepted session is a lease.

What the client sent (names, executable, storage, data, volume mounts) is kept in ``ivoa_offer_sets``
(one row per offer set: the canonical request document, the messages and the offers shown), see
docs/ivoa.md, "Storage".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from slotbroker.domain.errors import FieldError, Forbidden, NotFound, ValidationFailed
from slotbroker.services.booking.leases import LeaseService
from slotbroker.services.booking.offer_states import OFFER_EXPIRED, OfferConflict
from slotbroker.services.booking.offers import OfferService
from slotbroker.services.protocols.ivoa.errors import IvoaRefused
from slotbroker.services.protocols.ivoa.iso8601 import instant
from slotbroker.services.protocols.ivoa.phases import allowed_changes, read_update, refusal, session_phase
from slotbroker.services.protocols.ivoa.present import (
    Stored,
    failed_session,
    granted,
    ivoa_words,
    message,
    no_answer,
    nothing_fits,
    render_offer_set,
    render_session,
)
from slotbroker.services.protocols.ivoa.request import read_request
from slotbroker.services.protocols.ivoa.vocabulary import MAX_OFFERS
from slotbroker.store.db import Database
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire.offers import OfferSetRequest, OfferSetStatus, OfferSetView, OfferState, OfferView

# Offers searched for, of which the first MAX_OFFERS distinct ones are shown and the rest given back:
# the strategies often agree on a start, and a set of four identical proposals helps nobody.
SEARCHED_OFFERS = 10


@dataclass
class _Proposal:
    """A request read and its offers made: ``view`` None when it was refused before any offer set."""

    now: int
    echo: dict[str, Any]
    notes: list[dict[str, Any]]
    view: OfferSetView | None = None
    kept: list[str] = field(default_factory=list)  # the offers to show, by position


def distinct(offers: list[OfferView]) -> tuple[list[OfferView], list[OfferView]]:
    """(kept, surplus): no two kept offers propose the same start, end and amounts; at most MAX_OFFERS."""
    kept: list[OfferView] = []
    seen: set[tuple[int, int, tuple[int, int]]] = set()
    for offer in sorted(offers, key=lambda o: o.position):
        key = (int(offer.start.timestamp()), int(offer.end.timestamp()), granted(offer))
        if key not in seen and len(kept) < MAX_OFFERS:
            seen.add(key)
            kept.append(offer)
    return kept, [o for o in offers if o not in kept]


class IvoaService:
    """The ExecutionBroker use cases over ``OfferService`` and ``LeaseService``. ``project`` None is an
    admin (every project); otherwise other projects' offer sets and sessions do not exist (404)."""

    def __init__(self, db: Database, offers: OfferService, leases: LeaseService) -> None:
        self.db = db
        self.offers = offers
        self.leases = leases

    @property
    def clock(self) -> Callable[[], int]:
        return self.offers.clock

    # -- requests -------------------------------------------------------------------------------------------
    def request(self, doc: Any, *, project: str, base_url: str) -> dict[str, Any]:
        """POST /requests: an OfferSetResponse (``result`` YES with offers, or NO with messages)."""
        made = self._propose(doc, project)
        if made.view is None:
            return no_answer(made.echo, made.notes, made.now)
        stored = self._keep_echo(made, project)
        return self._offer_set(self.offers.offer_set(made.view.id, project=project), stored, base_url)

    def direct(self, doc: Any, *, project: str, base_url: str) -> tuple[bool, dict[str, Any]]:
        """POST /direct: a request booked without the offer round: the offers are made as for
        ``/requests`` and the first that still holds is accepted (the others are rejected with it).
        (True, the ACCEPTED session), or (False, a FAILED session whose messages say why).

        A FAILED direct execution leaves no offer set behind: the spec's 400 "FailedExecutionResponse"
        is a rejection with no Location (execution-broker.yaml, ``DirectExecution``), so there is nothing
        to read back by id, and nothing a user sends may write behind an error (docs/ivoa.md)."""
        made = self._propose(doc, project)
        if made.view is not None and made.kept:
            stored = self._keep_echo(made, project)
            for sid in made.kept:
                try:
                    self.offers.accept(sid, project=project)
                except OfferConflict:
                    continue  # expired or taken meanwhile: the next offer may still hold
                after = self.offers.offer(sid, project=project)
                return True, self._session(after, stored, base_url, phase="ACCEPTED")
        if made.view is not None:
            self._forget(made.view.id, made.kept, project)
        why = made.notes or [message("ERROR", "no offer could be booked", made.now)]
        return False, failed_session(made.echo, why, made.now)

    def _propose(self, doc: Any, project: str) -> _Proposal:
        """Read the request and make its offers (surplus ones given back). ``view`` None: refused, and
        nothing was written; the notes say why."""
        now = self.clock()
        tr = read_request(doc, now)
        notes = [message(level, text, now) for level, text in tr.notes]
        if tr.refusals:
            return _Proposal(now, tr.echo, notes + [message("ERROR", t, now) for t in tr.refusals])
        try:
            view = self.offers.create(
                OfferSetRequest(request=tr.slot, max_offers=SEARCHED_OFFERS), project=project, now_s=now
            )
        except ValidationFailed as exc:
            why = [message("ERROR", ivoa_words(f.detail), now) for f in exc.errors] or [
                message("ERROR", ivoa_words(exc.detail), now)
            ]
            return _Proposal(now, tr.echo, notes + why)
        except Forbidden as exc:  # e.g. the project's quota
            return _Proposal(now, tr.echo, [*notes, message("ERROR", ivoa_words(exc.detail), now)])
        kept, surplus = distinct(view.offers)
        for offer in surplus:
            self.offers.reject(offer.id, project=project)
        if view.status == OfferSetStatus.EMPTY:
            notes.append(message("ERROR", nothing_fits(view), now))
        return _Proposal(now, tr.echo, notes, view, [o.id for o in kept])

    def _keep_echo(self, made: _Proposal, project: str) -> Stored:
        assert made.view is not None
        stored = Stored(made.now, made.echo, made.notes, made.kept)
        document = {"echo": made.echo, "messages": made.notes, "shown": stored.shown}
        with UnitOfWork(self.db) as uow:
            uow.offers.add_ivoa_echo(made.view.id, project, made.now, json.dumps(document))
            uow.commit()
        return stored

    def _forget(self, set_id: str, offer_ids: list[str], project: str) -> None:
        """Drop a set no answer names (with its echo). Its offers give their holds back first (a no-op
        for those that expired or were refused); the released holds stay in the claims log as released
        consumers, which count against nothing. A set one of whose offers another request accepted
        meanwhile (through ``/v1/offer-sets``) holds a lease now, and stays."""
        for sid in offer_ids:
            try:
                self.offers.reject(sid, project=project)
            except OfferConflict:
                return
        with UnitOfWork(self.db) as uow:
            uow.offers.drop_set(set_id)
            uow.commit()

    def offer_set(self, set_id: str, *, project: str | None, base_url: str) -> dict[str, Any]:
        stored = self._stored(set_id, project)
        view = self.offers.offer_set(set_id, project=project)
        return self._offer_set(view, stored, base_url)

    # -- sessions -------------------------------------------------------------------------------------------
    def session(self, session_id: str, *, project: str | None, base_url: str) -> dict[str, Any]:
        offer = self.offers.offer(session_id, project=project)
        stored = self._stored(offer.offer_set_id, project, what=f"no session {session_id}")
        return self._session(offer, stored, base_url)

    def update(self, session_id: str, doc: Any, *, project: str | None, base_url: str) -> dict[str, Any]:
        """POST /sessions/{uuid}: ACCEPTED (accept, siblings rejected), REJECTED, CANCELLED (the lease).
        A change the session's phase does not allow is a 409 naming the phase and what is allowed."""
        value = read_update(doc)
        offer = self.offers.offer(session_id, project=project)
        stored = self._stored(offer.offer_set_id, project, what=f"no session {session_id}")
        phase = self._phase(offer)
        live = offer.state == OfferState.ACCEPTED and bool(allowed_changes(phase))
        if value == phase or (value == "ACCEPTED" and live):
            return self._session(offer, stored, base_url)  # asking for what already is changes nothing
        if value not in allowed_changes(phase):
            raise self._not_allowed(offer, phase, value, stored, base_url)
        try:
            if value == "ACCEPTED":
                self.offers.accept(session_id, project=project)
                after = self.offers.offer(session_id, project=project)
                return self._session(after, stored, base_url, phase="ACCEPTED")
            if value == "REJECTED":
                return self._session(self.offers.reject(session_id, project=project), stored, base_url)
        except OfferConflict as exc:
            raise self._refused(exc, session_id, project, stored, base_url, value) from None
        assert offer.lease is not None  # CANCELLED is allowed only once accepted
        self.leases.cancel(offer.lease, project=None)  # the offer lookup above already checked the project
        return self._session(self.offers.offer(session_id, project=project), stored, base_url)

    # -- rendering ------------------------------------------------------------------------------------------
    def _offer_set(self, view: OfferSetView, stored: Stored, base_url: str) -> dict[str, Any]:
        shown = [o for o in view.offers if stored.shown is None or o.id in stored.shown]
        sessions = [self._session(o, stored, base_url) for o in shown]
        return render_offer_set(view, stored, sessions, base_url)

    def _phase(self, offer: OfferView) -> str:
        lease_status = None
        if offer.state == OfferState.ACCEPTED and offer.lease is not None:
            try:
                lease_status = self.leases.get(offer.lease, project=None).status
            except NotFound:
                lease_status = None
        return session_phase(offer.state, lease_status)

    def _session(
        self, offer: OfferView, stored: Stored, base_url: str, *, phase: str | None = None
    ) -> dict[str, Any]:
        return render_session(offer, stored, base_url, phase or self._phase(offer))

    # -- helpers --------------------------------------------------------------------------------------------
    def _stored(self, set_id: str, project: str | None, *, what: str | None = None) -> Stored:
        with UnitOfWork(self.db, readonly=True) as uow:
            row = uow.offers.ivoa_echo(set_id)
        if row is None or (project is not None and row.project != project):
            raise NotFound(what or f"no offer set {set_id}")
        doc = json.loads(row.document)
        return Stored(int(row.created_s), doc["echo"], doc.get("messages", []), doc.get("shown"))

    def _conflict(
        self, detail: str, code: str, offer: OfferView, stored: Stored, base_url: str
    ) -> IvoaRefused:
        return IvoaRefused(
            detail, [FieldError("/value", detail)], code=code, session=self._session(offer, stored, base_url)
        )

    def _refused(
        self,
        exc: OfferConflict,
        session_id: str,
        project: str | None,
        stored: Stored,
        base_url: str,
        value: str,
    ) -> IvoaRefused:
        """The offer changed under us (it expired, or a sibling was accepted): say so in its phase now."""
        now = self.offers.offer(session_id, project=project)
        phase = "EXPIRED" if exc.code == OFFER_EXPIRED else self._phase(now)
        return self._not_allowed(now, phase, value, stored, base_url, code=exc.code)

    def _not_allowed(
        self, offer: OfferView, phase: str, value: str, stored: Stored, base_url: str, *, code: str = ""
    ) -> IvoaRefused:
        if phase == "EXPIRED":
            detail = (
                f"session {offer.id} expired at {instant(int(offer.expires.timestamp()))}; "
                f"it can no longer be changed to {value} (no change is allowed now)"
            )
            return self._conflict(detail, OFFER_EXPIRED, offer, stored, base_url)
        detail = refusal(offer.id, phase, value)
        return self._conflict(detail, code or "phase_change_refused", offer, stored, base_url)
