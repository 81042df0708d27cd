"""The ExecutionBroker use cases over offers and leases: a request becomes an offer set, a session is an
offer (same uuid), an accepted session is a lease.

What the client sent (names, executable, storage, data, volume mounts) is kept in ``ivoa_offer_sets``
(one row per offer set: the canonical request document and the messages), see docs/ivoa.md, "Storage".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slotbroker.domain.errors import FieldError, Forbidden, NotFound, ValidationFailed
from slotbroker.services.leases import LeaseService
from slotbroker.services.offers import OFFER_EXPIRED, OfferConflict, OfferService
from slotbroker.services.protocols.ivoa.errors import IvoaRefused
from slotbroker.services.protocols.ivoa.iso8601 import duration_text, instant
from slotbroker.services.protocols.ivoa.phases import read_update, session_phase
from slotbroker.services.protocols.ivoa.request import Translated, read_request
from slotbroker.services.protocols.ivoa.vocabulary import (
    COMPONENT,
    MAX_OFFERS,
    MESSAGE_KIND,
    OFFERSET_KIND,
    SESSION_KIND,
)
from slotbroker.store.db import Database
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire.offers import OfferSetRequest, OfferSetStatus, OfferSetView, OfferState, OfferView


def message(level: str, text: str, now_s: int, **values: str) -> dict[str, Any]:
    """A spec ``MessageItem``."""
    item: dict[str, Any] = {"kind": MESSAGE_KIND, "time": instant(now_s), "level": level, "message": text}
    if values:
        item["template"] = text
        item["values"] = values
    return item


@dataclass
class Stored:
    created_s: int
    echo: dict[str, Any]
    messages: list[dict[str, Any]]


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
        now = self.clock()
        tr = read_request(doc, now)
        notes = [message(level, text, now) for level, text in tr.notes]
        if tr.refusals:
            return self._no(tr, notes + [message("ERROR", t, now) for t in tr.refusals], now)
        try:
            view = self.offers.create(
                OfferSetRequest(request=tr.slot, max_offers=MAX_OFFERS), project=project, now_s=now
            )
        except ValidationFailed as exc:
            why = [message("ERROR", _ivoa_words(f.detail), now) for f in exc.errors] or [
                message("ERROR", _ivoa_words(exc.detail), now)
            ]
            return self._no(tr, notes + why, now)
        except Forbidden as exc:  # e.g. the project's quota
            return self._no(tr, [*notes, message("ERROR", exc.detail, now)], now)
        if view.status == OfferSetStatus.EMPTY:
            notes.append(message("ERROR", _nothing_fits(view), now))
        stored = Stored(now, tr.echo, notes)
        with UnitOfWork(self.db) as uow:
            uow.offers.add_ivoa_echo(view.id, project, now, json.dumps({"echo": tr.echo, "messages": notes}))
            uow.commit()
        return self._offer_set(view, stored, base_url)

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
        """POST /sessions/{uuid}: ACCEPTED (accept, siblings rejected), REJECTED, CANCELLED (the lease)."""
        value = read_update(doc)
        offer = self.offers.offer(session_id, project=project)
        stored = self._stored(offer.offer_set_id, project, what=f"no session {session_id}")
        if value == "ACCEPTED":
            if offer.state == OfferState.ACCEPTED:
                return self._session(offer, stored, base_url)  # accepting twice changes nothing
            try:
                self.offers.accept(session_id, project=project)
            except OfferConflict as exc:
                raise self._refused(exc, session_id, project, stored, base_url) from None
            after = self.offers.offer(session_id, project=project)
            return self._session(after, stored, base_url, phase="ACCEPTED")
        if value == "REJECTED":
            try:
                after = self.offers.reject(session_id, project=project)
            except OfferConflict as exc:
                raise self._refused(exc, session_id, project, stored, base_url) from None
            return self._session(after, stored, base_url)
        if offer.state != OfferState.ACCEPTED or offer.lease is None:
            phase = session_phase(offer.state)
            raise IvoaRefused(
                f"session {session_id} is {phase}; only an accepted session can be cancelled "
                "(reject an offer instead)",
                [FieldError("/value", "CANCELLED needs an accepted session")],
                code="session_not_accepted",
                session=self._session(offer, stored, base_url),
            )
        self.leases.cancel(offer.lease, project=None)  # the offer lookup above already checked the project
        return self._session(self.offers.offer(session_id, project=project), stored, base_url)

    # -- rendering ------------------------------------------------------------------------------------------
    def _no(self, tr: Translated, messages: list[dict[str, Any]], now: int) -> dict[str, Any]:
        meta: dict[str, Any] = {"created": instant(now), "messages": messages}
        if "name" in tr.echo:
            meta["name"] = tr.echo["name"]
        return {"kind": OFFERSET_KIND, "meta": meta, "result": "NO", "messages": messages, "offers": []}

    def _offer_set(self, view: OfferSetView, stored: Stored, base_url: str) -> dict[str, Any]:
        offers = [self._session(o, stored, base_url) for o in view.offers]
        result = "YES" if view.offers else "NO"
        meta: dict[str, Any] = {
            "uuid": view.id,
            "name": stored.echo.get("name", f"offerset-{view.id[:8]}"),
            "url": f"{base_url}/offersets/{view.id}",
            "created": instant(stored.created_s),
        }
        if stored.messages:
            meta["messages"] = stored.messages
        out: dict[str, Any] = {"kind": OFFERSET_KIND, "meta": meta, "result": result}
        if stored.messages:
            out["messages"] = stored.messages
        out["offers"] = offers
        return out

    def _session(
        self, offer: OfferView, stored: Stored, base_url: str, *, phase: str | None = None
    ) -> dict[str, Any]:
        lease_status = None
        if offer.state == OfferState.ACCEPTED and offer.lease is not None:
            try:
                lease_status = self.leases.get(offer.lease, project=None).status
            except NotFound:
                lease_status = None
        start, end = int(offer.start.timestamp()), int(offer.end.timestamp())
        echo = stored.echo
        granted = (offer.resources.get(COMPONENT) or [{}])[0]
        compute = dict(echo["compute"])
        cores = int(granted.get("VCPU", 0))
        gib = int(granted.get("MEMORY_MB", 0)) // 1024
        compute["cores"] = {"min": cores, "max": cores}
        compute["memory"] = {"min": gib, "max": gib}
        if "volumes" in compute:
            compute["volumes"] = [dict(v) for v in compute["volumes"]]
        session: dict[str, Any] = {
            "kind": SESSION_KIND,
            "meta": {
                "uuid": offer.id,
                "name": f"{echo.get('name', 'offer')}-{offer.position}",
                "url": f"{base_url}/sessions/{offer.id}",
                "created": instant(stored.created_s),
            },
        }
        if "executable" in echo:
            session["executable"] = echo["executable"]
        session["compute"] = compute
        for key in ("storage", "data"):
            if key in echo:
                session[key] = echo[key]
        session["phase"] = phase or session_phase(offer.state, lease_status)
        session["expires"] = instant(int(offer.expires.timestamp()))
        session["schedule"] = {
            "preparing": {"start": instant(start), "duration": "PT0S"},
            "available": {"start": f"{instant(start)}/PT0S", "duration": duration_text(end - start)},
            "releasing": {"start": instant(end), "duration": "PT0S"},
        }
        return session

    # -- helpers --------------------------------------------------------------------------------------------
    def _stored(self, set_id: str, project: str | None, *, what: str | None = None) -> Stored:
        with UnitOfWork(self.db, readonly=True) as uow:
            row = uow.offers.ivoa_echo(set_id)
        if row is None or (project is not None and row.project != project):
            raise NotFound(what or f"no offer set {set_id}")
        doc = json.loads(row.document)
        return Stored(int(row.created_s), doc["echo"], doc.get("messages", []))

    def _refused(
        self, exc: OfferConflict, session_id: str, project: str | None, stored: Stored, base_url: str
    ) -> IvoaRefused:
        now = self.offers.offer(session_id, project=project)
        expired = exc.code == OFFER_EXPIRED or now.state == OfferState.EXPIRED
        detail = (
            f"session {session_id} expired at {instant(int(now.expires.timestamp()))}; "
            "it can no longer be accepted"
            if expired
            else exc.detail
        )
        return IvoaRefused(
            detail,
            [FieldError("/value", detail)],
            code=OFFER_EXPIRED if expired else exc.code,
            session=self._session(now, stored, base_url),
        )


_FIELD_WORDS = (
    ("start_within", "schedule.requested.start"),
    ("min_duration", "schedule.requested.duration"),
    ("duration", "schedule.requested.duration"),
    ("latest_end", "schedule.requested.start"),
    ("earliest_start", "schedule.requested.start"),
    ("resources.VCPU", "compute.cores"),
    ("resources.MEMORY_MB", "compute.memory"),
)


def _ivoa_words(text: str) -> str:
    """A find-slot message in the request's own terms."""
    for ours, theirs in _FIELD_WORDS:
        if text.startswith(ours):
            return theirs + text[len(ours) :]
    return text


def _nothing_fits(view: OfferSetView) -> str:
    why = view.explanation
    if why is None or not why.blockers:
        return "nothing fits the request in the requested start interval"
    reasons = "; ".join(b.detail for b in why.blockers[:5])
    return f"nothing fits the request in the requested start interval: {reasons}"
