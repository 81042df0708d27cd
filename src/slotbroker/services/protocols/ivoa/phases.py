"""Session phases: how an offer's state and its lease's status read as an IVOA phase, which phase
changes a client may ask for in each phase (the session's ``meta.options``), and reading an update."""

from __future__ import annotations

from typing import Any

from slotbroker.services.protocols.ivoa.errors import IvoaInvalid
from slotbroker.services.protocols.ivoa.reader import Reader
from slotbroker.services.protocols.ivoa.vocabulary import UPDATE_FIELDS, UPDATE_KINDS
from slotbroker.wire.offers import OfferState

PHASES = (
    "INITIAL", "OFFERED", "ACCEPTED", "REJECTED", "EXPIRED", "WAITING", "PREPARING", "AVAILABLE",
    "RUNNING", "RELEASING", "COMPLETED", "FAILED", "CANCELLED",
)  # fmt: skip
LEASE_PHASE = {
    "PENDING": "WAITING",
    "ACTIVE": "AVAILABLE",
    "ENDED": "COMPLETED",
    "CANCELLED": "CANCELLED",
    "ERROR": "FAILED",
}
UPDATE_VALUES = ("ACCEPTED", "REJECTED", "CANCELLED")  # the phases a client may ask for at all
# What a client may change a session to, by its phase now; every other change is the service's to make.
ALLOWED: dict[str, tuple[str, ...]] = {
    "OFFERED": ("ACCEPTED", "REJECTED"),
    "ACCEPTED": ("CANCELLED",),
    "WAITING": ("CANCELLED",),
    "PREPARING": ("CANCELLED",),
    "AVAILABLE": ("CANCELLED",),
    "RUNNING": ("CANCELLED",),
}
OPTION_KIND = "uri:enum-value-option"
PHASE_PATHS = ("phase", "/phase")  # clients send both


def session_phase(state: OfferState | str, lease_status: str | None = None) -> str:
    """The session phase of an offer (``OFFERED``/``REJECTED``/``EXPIRED``) or of the lease an accepted
    offer became (``WAITING``/``AVAILABLE``/``COMPLETED``/``CANCELLED``/``FAILED``; ``ACCEPTED`` when
    the lease cannot be read)."""
    if state == OfferState.ACCEPTED:
        return LEASE_PHASE.get(lease_status or "", "ACCEPTED")
    return str(OfferState(state).value)


def allowed_changes(phase: str) -> tuple[str, ...]:
    return ALLOWED.get(phase, ())


def phase_options(phase: str) -> list[dict[str, Any]]:
    """The session's ``meta.options``: one ``EnumValueOption`` on ``phase`` when any change is allowed."""
    values = allowed_changes(phase)
    return [{"kind": OPTION_KIND, "path": "phase", "values": list(values)}] if values else []


def refusal(session_id: str, phase: str, value: str) -> str:
    """Why ``value`` cannot be set now, naming the phase and the changes allowed."""
    allowed = allowed_changes(phase)
    now = f"allowed now: {', '.join(allowed)}" if allowed else "no change is allowed now"
    return f"session {session_id} is {phase}; it cannot be changed to {value} ({now})"


def read_update(doc: Any) -> str:
    """An ``EnumValueUpdate`` of ``phase`` (or ``/phase``) -> the phase asked for. Any phase name reads
    (one the service alone drives is refused later, 409, naming what is allowed); anything else is 400."""
    r = Reader(0)
    body = r.mapping(doc, "")
    if body is None:
        raise IvoaInvalid("the body must be an update object", r.errors)
    r.fields(body, UPDATE_FIELDS | {"units", "delta"}, "")
    kind, path, value = body.get("kind"), body.get("path"), body.get("value")
    # Membership tests only on strings: a list or object here must be a 400, not a TypeError.
    if not isinstance(kind, str) or kind not in UPDATE_KINDS:
        r.fail("/kind", f"unsupported update kind {kind!r}; send uri:enum-value-update")
    if not isinstance(path, str) or path not in PHASE_PATHS:
        r.fail("/path", f"only the session's phase can be updated, not {path!r}")
    if not isinstance(value, str) or value not in PHASES:
        r.fail("/value", f"a phase update is one of {', '.join(UPDATE_VALUES)}, not {value!r}")
    if r.errors:
        raise IvoaInvalid(r.errors[0].detail, r.errors)
    return str(value)
