"""Writing the answers: offer sets and sessions as Calycopis documents, messages, and find-slot's words
put back into the request's own terms (``compute.cores``, not ``VCPU``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from slotbroker.services.protocols.ivoa.iso8601 import duration_text, instant
from slotbroker.services.protocols.ivoa.phases import phase_options
from slotbroker.services.protocols.ivoa.vocabulary import COMPONENT, MESSAGE_KIND, OFFERSET_KIND, SESSION_KIND
from slotbroker.wire.offers import OfferSetView, OfferView


@dataclass
class Stored:
    """What the offer set keeps beside the offers: the echo, the messages and the offers shown."""

    created_s: int
    echo: dict[str, Any]
    messages: list[dict[str, Any]]
    shown: list[str] | None = field(default=None)  # offer ids in the answer (None: every offer)


def message(level: str, text: str, now_s: int, **values: str) -> dict[str, Any]:
    """A spec ``MessageItem``."""
    item: dict[str, Any] = {"kind": MESSAGE_KIND, "time": instant(now_s), "level": level, "message": text}
    if values:
        item["template"] = text
        item["values"] = values
    return item


def no_answer(echo: dict[str, Any], messages: list[dict[str, Any]], now: int) -> dict[str, Any]:
    meta: dict[str, Any] = {"created": instant(now), "messages": messages}
    if "name" in echo:
        meta["name"] = echo["name"]
    return {"kind": OFFERSET_KIND, "meta": meta, "result": "NO", "messages": messages, "offers": []}


def failed_session(echo: dict[str, Any], messages: list[dict[str, Any]], now: int) -> dict[str, Any]:
    """What ``POST /direct`` answers (400) when nothing could be booked: a session that never ran,
    phase FAILED, with the messages that say why (the spec's "FailedExecutionResponse")."""
    meta: dict[str, Any] = {"created": instant(now), "messages": messages}
    if "name" in echo:
        meta["name"] = echo["name"]
    out: dict[str, Any] = {"kind": SESSION_KIND, "meta": meta}
    for key in ("executable", "compute", "storage", "data"):
        if key in echo:
            out[key] = echo[key]
    out["phase"] = "FAILED"
    return out


def render_offer_set(
    view: OfferSetView, stored: Stored, sessions: list[dict[str, Any]], base_url: str
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "uuid": view.id,
        "name": stored.echo.get("name", f"offerset-{view.id[:8]}"),
        "url": f"{base_url}/offersets/{view.id}",
        "created": instant(stored.created_s),
    }
    if stored.messages:
        meta["messages"] = stored.messages
    out: dict[str, Any] = {"kind": OFFERSET_KIND, "meta": meta, "result": "YES" if sessions else "NO"}
    if stored.messages:
        out["messages"] = stored.messages
    out["offers"] = sessions
    return out


def granted(offer: OfferView) -> tuple[int, int]:
    """(cores, GiB) the offer holds."""
    got = (offer.resources.get(COMPONENT) or [{}])[0]
    return int(got.get("VCPU", 0)), int(got.get("MEMORY_MB", 0)) // 1024


def render_session(offer: OfferView, stored: Stored, base_url: str, phase: str) -> dict[str, Any]:
    start, end = int(offer.start.timestamp()), int(offer.end.timestamp())
    echo = stored.echo
    cores, gib = granted(offer)
    compute = dict(echo["compute"])
    compute["cores"] = {"min": cores, "max": cores}
    compute["memory"] = {"min": gib, "max": gib}
    if "volumes" in compute:
        compute["volumes"] = [dict(v) for v in compute["volumes"]]
    out: dict[str, Any] = {
        "kind": SESSION_KIND,
        "meta": {
            "uuid": offer.id,
            "name": f"{echo.get('name', 'offer')}-{offer.position}",
            "url": f"{base_url}/sessions/{offer.id}",
            "created": instant(stored.created_s),
            "options": phase_options(phase),
        },
    }
    if "executable" in echo:
        out["executable"] = echo["executable"]
    out["compute"] = compute
    for key in ("storage", "data"):
        if key in echo:
            out[key] = echo[key]
    out["phase"] = phase
    out["expires"] = instant(int(offer.expires.timestamp()))
    out["schedule"] = {
        "preparing": {"start": instant(start), "duration": "PT0S"},
        "available": {"start": f"{instant(start)}/PT0S", "duration": duration_text(end - start)},
        "releasing": {"start": instant(end), "duration": "PT0S"},
    }
    return out


_FIELD_WORDS = (
    ("start_within", "schedule.requested.start"),
    ("min_duration", "schedule.requested.duration"),
    ("duration", "schedule.requested.duration"),
    ("latest_end", "schedule.requested.start"),
    ("earliest_start", "schedule.requested.start"),
)
_CLASS_WORDS = {
    "VCPU": "compute.cores",
    "MEMORY_MB": "compute.memory",
    f"component {COMPONENT!r}": "the compute resource",
    "resources.VCPU": "compute.cores",
    "resources.MEMORY_MB": "compute.memory",
}
_CLASS_RE = re.compile(  # whole words: VCPUS is not VCPU
    "|".join(rf"\b{re.escape(k)}(?!\w)" for k in sorted(_CLASS_WORDS, key=len, reverse=True))
)


def ivoa_words(text: str) -> str:
    """A find-slot message in the request's own terms: field names and resource classes."""
    for ours, theirs in _FIELD_WORDS:
        if text.startswith(ours):
            text = theirs + text[len(ours) :]
            break
    return _CLASS_RE.sub(lambda m: _CLASS_WORDS[m.group(0)], text)


def nothing_fits(view: OfferSetView) -> str:
    why = view.explanation
    if why is None or not why.blockers:
        return "nothing fits the request in the requested start interval"
    reasons = "; ".join(ivoa_words(b.detail) for b in why.blockers[:5])
    return f"nothing fits the request in the requested start interval: {reasons}"
