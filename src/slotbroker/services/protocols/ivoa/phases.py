"""Session phases: how an offer's state and its lease's status read as an IVOA phase, and the phase
updates a client may send."""

from __future__ import annotations

from typing import Any

from slotbroker.services.protocols.ivoa.errors import IvoaInvalid
from slotbroker.services.protocols.ivoa.reader import Reader
from slotbroker.services.protocols.ivoa.vocabulary import UPDATE_FIELDS, UPDATE_KINDS
from slotbroker.wire.offers import OfferState

LEASE_PHASE = {
    "PENDING": "WAITING",
    "ACTIVE": "AVAILABLE",
    "ENDED": "COMPLETED",
    "CANCELLED": "CANCELLED",
    "ERROR": "FAILED",
}
UPDATE_VALUES = ("ACCEPTED", "REJECTED", "CANCELLED")


def session_phase(state: OfferState | str, lease_status: str | None = None) -> str:
    """The session phase of an offer (``OFFERED``/``REJECTED``/``EXPIRED``) or of the lease an accepted
    offer became (``WAITING``/``AVAILABLE``/``COMPLETED``/``CANCELLED``/``FAILED``; ``ACCEPTED`` when
    the lease cannot be read)."""
    if state == OfferState.ACCEPTED:
        return LEASE_PHASE.get(lease_status or "", "ACCEPTED")
    return str(OfferState(state).value)


def read_update(doc: Any) -> str:
    """An ``EnumValueUpdate`` of ``phase`` -> ACCEPTED, REJECTED or CANCELLED."""
    r = Reader(0)
    body = r.mapping(doc, "")
    if body is None:
        raise IvoaInvalid("the body must be an update object", r.errors)
    r.fields(body, UPDATE_FIELDS | {"units", "delta"}, "")
    kind, path, value = body.get("kind"), body.get("path"), body.get("value")
    # Membership tests only on strings: a list or object here must be a 400, not a TypeError.
    if not isinstance(kind, str) or kind not in UPDATE_KINDS:
        r.fail("/kind", f"unsupported update kind {kind!r}; send uri:enum-value-update")
    if path != "phase":
        r.fail("/path", f"only the session's phase can be updated, not {path!r}")
    if not isinstance(value, str) or value not in UPDATE_VALUES:
        r.fail("/value", f"a phase update is one of {', '.join(UPDATE_VALUES)}, not {value!r}")
    if r.errors:
        raise IvoaInvalid(r.errors[0].detail, r.errors)
    return str(value)
