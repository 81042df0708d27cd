"""IVOA ExecutionBroker (Calycopis v1.0) on top of offers and leases: translation both ways and phases.

An ``ExecutionRequest`` (executable, compute, storage, data, volumes, schedule) becomes one find-slot
component ``compute`` (``VCPU`` and ``MEMORY_MB``) searched over the requested start interval for the
requested duration; ``OfferService.create`` holds the offers. The answer is an ``OfferSetResponse`` whose
offers are ``ScheduledExecutionSession`` documents; a session is one offer (same uuid), and its ``phase``
comes from the offer's state and, once accepted, from the lease's status. See docs/ivoa.md for every
default and mapping decision.

What the client sent (names, executable, storage, data, volume mounts) is not part of a find-slot request,
so it is kept here, in ``ivoa_offer_sets`` (one row per offer set, the canonical request document), a
table this module creates on first use (``checkfirst``) because the store's migrations are not ours to
change; see docs/ivoa.md, "Storage".
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import isodate

from slotbroker.domain.errors import (
    FieldError,
    Forbidden,
    NotFound,
    SlotbrokerError,
    ValidationFailed,
)
from slotbroker.domain.limits import time_problems
from slotbroker.services.booking.leases import LeaseService
from slotbroker.services.booking.offers import OFFER_EXPIRED, OfferConflict, OfferService
from slotbroker.store.db import Database
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire.offers import (
    OfferSetRequest,
    OfferSetStatus,
    OfferSetView,
    OfferState,
    OfferView,
)

# -- kinds ----------------------------------------------------------------------------------------------

CURRENT_BASE = "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/"
LEGACY_BASE = "https://www.purl.org/ivoa.net/EB/schema/v1.0/types/"
_CURRENT_RE = re.compile(re.escape(CURRENT_BASE) + r"([a-z]+)/([A-Za-z0-9-]+)\.yaml")
_LEGACY_RE = re.compile(re.escape(LEGACY_BASE) + r"([a-z]+)/([A-Za-z0-9-]+)-1\.0")

KINDS: dict[str, frozenset[str]] = {
    "executable": frozenset({"docker-container", "singularity-container", "jupyter-notebook"}),
    "compute": frozenset({"simple-compute-resource"}),
    "storage": frozenset({"simple-storage-resource"}),
    "data": frozenset(
        {
            "simple-data-resource",
            "S3-data-resource",
            "rucio-data-resource",
            "ivoa-data-resource",
            "skao-data-resource",
        }
    ),
    "volume": frozenset({"simple-volume-mount"}),
}


def kind_uri(group: str, name: str) -> str:
    return f"{CURRENT_BASE}{group}/{name}.yaml"


SESSION_KIND = kind_uri("session", "scheduled-execution-session")
OFFERSET_KIND = kind_uri("offerset", "execution-offerset")
MESSAGE_KIND = "urn:slotbroker:ivoa-message"
UPDATE_KINDS = frozenset(
    {
        "uri:enum-value-update",
        kind_uri("update", "enum-value-update"),
        f"{LEGACY_BASE}update/enum-value-update-1.0",
    }
)


def canonical_kind(value: str, group: str) -> str | None:
    """The current kind URI for ``value`` (current or legacy form) if it names a kind of ``group``."""
    for pattern in (_CURRENT_RE, _LEGACY_RE):
        m = pattern.fullmatch(value)
        if m and m.group(1) == group and m.group(2) in KINDS[group]:
            return kind_uri(group, m.group(2))
    return None


# -- the fields each part may carry ---------------------------------------------------------------------

COMPONENT_FIELDS = frozenset({"kind", "meta", "costs", "metrics", "phase", "schedule"})
META_FIELDS = frozenset({"uuid", "name", "url", "description", "created", "modified", "messages", "options"})
REQUEST_FIELDS = frozenset({"executable", "compute", "storage", "data", "schedule", "costs", "metrics"})
EXTRA_REQUEST_FIELDS = frozenset({"volumes", "meta"})  # examples' top-level volume list; offer-set name
EXECUTABLE_FIELDS = {
    "jupyter-notebook": frozenset({"location"}),
    "singularity-container": frozenset({"location"}),
    "docker-container": frozenset({"image", "privileged", "command", "entrypoint", "environment", "network"}),
}
DATA_FIELDS = {
    "simple-data-resource": frozenset({"location"}),
    "S3-data-resource": frozenset({"endpoint", "template", "bucket", "object"}),
    "ivoa-data-resource": frozenset({"ivoa"}),
    "rucio-data-resource": frozenset({"rucio"}),
    "skao-data-resource": frozenset({"ivoa", "skao"}),
}
COMPUTE_FIELDS = frozenset({"cores", "memory", "volumes"})
STORAGE_FIELDS = frozenset({"data", "size"})
VOLUME_FIELDS = frozenset({"path", "mode", "resource", "resources", "cardinality"})
MINMAX_FIELDS = frozenset({"min", "max"})
MEMORY_FIELDS = frozenset({"min", "max", "units"})
UPDATE_FIELDS = frozenset({"kind", "path", "value"})

# -- defaults (docs/ivoa.md, "Defaults") -----------------------------------------------------------------

DEFAULT_CORES = 1  # the prototype's default compute: 1 core, 1 GiB (example 002 offers 2x of it)
DEFAULT_MEMORY_GIB = 1
DEFAULT_DURATION_S = 2 * 3600  # PT2H (example 002: the prototype offers 2 x 2 h)
DEFAULT_START_WINDOW_S = 24 * 3600  # start between now and now + 24 h (the prototype's look-ahead)
DEFAULT_COMPUTE_NAME = "Default compute resource"
MAX_OFFERS = 4  # the examples' offer sets hold 4 offers
MAX_CORES = 1_000_000
MAX_MEMORY_MIB = 2**50
UNITS_MIB: dict[str, float] = {
    "kB": 1000 / 2**20,
    "kiB": 1 / 1024,
    "MB": 1000**2 / 2**20,
    "MiB": 1,
    "GB": 1000**3 / 2**20,
    "GiB": 1024,
    "TB": 1000**4 / 2**20,
    "TiB": 1024**2,
    "PB": 1000**5 / 2**20,
    "PiB": 1024**3,
}
COMPONENT = "compute"  # the find-slot component every IVOA request becomes

# -- phases ---------------------------------------------------------------------------------------------

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


# -- errors ---------------------------------------------------------------------------------------------


@dataclass
class IvoaInvalid(SlotbrokerError):
    """The document cannot be read (wrong type, unknown field or kind, bad ISO 8601, dangling name):
    HTTP 400 with every offending field's pointer."""

    code: str = "validation_error"


@dataclass
class IvoaRefused(SlotbrokerError):
    """A session update that cannot be done (expired, not open, not accepted): HTTP 409, with the
    session as it now is and an IVOA ``result: NO`` message."""

    code: str = "conflict"
    session: dict[str, Any] = field(default_factory=dict)


# -- small helpers --------------------------------------------------------------------------------------


def instant(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration_text(seconds: int) -> str:
    """Seconds as an ISO 8601 duration (``PT1H30M``, ``PT0S``)."""
    if seconds <= 0:
        return "PT0S"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    out = "P" + (f"{days}D" if days else "")
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{secs}S" if secs else "")
    return out + ("T" + clock if clock else "")


def message(level: str, text: str, now_s: int, **values: str) -> dict[str, Any]:
    """A spec ``MessageItem``."""
    item: dict[str, Any] = {"kind": MESSAGE_KIND, "time": instant(now_s), "level": level, "message": text}
    if values:
        item["template"] = text
        item["values"] = values
    return item


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_instant(text: str) -> datetime:
    """An ISO 8601 date-time or date; no offset means UTC (the spec's pattern allows both)."""
    if "T" in text:
        dt = cast(datetime, isodate.parse_datetime(text))
    else:
        d = isodate.parse_date(text)
        if not isinstance(d, date):
            raise ValueError(text)
        dt = datetime(d.year, d.month, d.day)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _parse_duration(text: str) -> int:
    d = isodate.parse_duration(text)
    if not isinstance(d, timedelta):
        raise ValueError("months or years are ambiguous; give days, hours, minutes or seconds")
    return int(d.total_seconds())


def parse_start_interval(text: str) -> tuple[int, int]:
    """``start/end``, ``start/duration``, ``duration/end`` or a single instant -> (first, last) start."""
    parts = text.split("/")
    if len(parts) == 1:
        at = _parse_instant(parts[0])
        return math.ceil(at.timestamp()), math.floor(at.timestamp())
    if len(parts) != 2 or not all(parts):
        raise ValueError("not an interval")
    a, b = parts
    if a.startswith("P"):
        end = _parse_instant(b)
        start = end - timedelta(seconds=_parse_duration(a))
    else:
        start = _parse_instant(a)
        end = start + timedelta(seconds=_parse_duration(b)) if b.startswith("P") else _parse_instant(b)
    return math.ceil(start.timestamp()), math.floor(end.timestamp())


# -- reading a request ----------------------------------------------------------------------------------


@dataclass
class Translated:
    """A request read: the find-slot document, what to echo, and why it cannot be served (if so)."""

    slot: dict[str, Any]
    echo: dict[str, Any]
    notes: list[tuple[str, str]] = field(default_factory=list)  # (level, text): defaults, aliases
    refusals: list[str] = field(default_factory=list)  # readable, but cannot be served: result NO


class _Reader:
    def __init__(self, now_s: int) -> None:
        self.now = now_s
        self.errors: list[FieldError] = []
        self.notes: list[tuple[str, str]] = []
        self.refusals: list[str] = []

    def fail(self, where: str, detail: str) -> None:
        self.errors.append(FieldError(where, f"{where.lstrip('/') or 'body'}: {detail}"))

    def mapping(self, value: Any, where: str) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.fail(where, "must be an object")
            return None
        return value

    def fields(self, obj: dict[str, Any], allowed: frozenset[str], where: str) -> None:
        for key in obj:
            if key not in allowed:
                self.fail(f"{where}/{key}", f"unknown field {key!r} (allowed: {', '.join(sorted(allowed))})")

    def text(self, obj: dict[str, Any], key: str, where: str) -> str | None:
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            self.fail(f"{where}/{key}", "must be a string")
            return None
        return value

    def kind(self, obj: dict[str, Any], group: str, where: str) -> tuple[str, str] | None:
        """(canonical uri, short name) of the component's kind."""
        raw = obj.get("kind")
        if raw is None:
            self.fail(
                f"{where}/kind",
                f"required: a {group} kind URI such as {kind_uri(group, sorted(KINDS[group])[0])}",
            )
            return None
        if not isinstance(raw, str):
            self.fail(f"{where}/kind", "must be a string (a kind URI)")
            return None
        uri = canonical_kind(raw, group)
        if uri is None:
            known = ", ".join(kind_uri(group, n) for n in sorted(KINDS[group]))
            self.fail(
                f"{where}/kind", f"unknown {group} kind {raw!r}; known: {known} (or their -1.0 aliases)"
            )
            return None
        return uri, uri.removeprefix(f"{CURRENT_BASE}{group}/").removesuffix(".yaml")

    def component(
        self, obj: dict[str, Any], group: str, extra: dict[str, frozenset[str]] | frozenset[str], where: str
    ) -> dict[str, Any]:
        """Kind, meta (name, description) and the kind's own fields, canonicalised for the echo."""
        got = self.kind(obj, group, where)
        own = extra if isinstance(extra, frozenset) else extra.get(got[1] if got else "", frozenset())
        allowed = COMPONENT_FIELDS | own | {"name"}
        if not isinstance(extra, frozenset) and got is None:
            allowed = COMPONENT_FIELDS | frozenset().union(*extra.values()) | {"name"}
        self.fields(obj, allowed, where)
        out: dict[str, Any] = {"kind": got[0] if got else obj.get("kind")}
        meta: dict[str, Any] = {}
        raw_meta = obj.get("meta")
        if raw_meta is not None:
            m = self.mapping(raw_meta, f"{where}/meta")
            if m is not None:
                self.fields(m, META_FIELDS, f"{where}/meta")
                for key in ("name", "description"):
                    value = self.text(m, key, f"{where}/meta")
                    if value is not None:
                        meta[key] = value
        alias = self.text(obj, "name", where)
        if alias is not None:
            if "name" not in meta:
                meta["name"] = alias
            self.notes.append(
                (
                    "WARN",
                    f"{where.lstrip('/')}.name is not a v1.0 field; read as {where.lstrip('/')}.meta.name",
                )
            )
        if meta:
            out["meta"] = meta
        for key in sorted(own):
            if key in obj:
                out[key] = obj[key]
        return out

    def amount(self, obj: dict[str, Any], key: str, where: str) -> int | None:
        value = obj.get(key)
        if value is None:
            return None
        if not _is_int(value):
            self.fail(f"{where}/{key}", "must be an integer")
            return None
        if value < 1:
            self.fail(f"{where}/{key}", f"must be at least 1, got {value}")
            return None
        return int(value)


def _names(items: list[dict[str, Any]]) -> dict[str, int]:
    return {str(it["meta"]["name"]): i for i, it in enumerate(items) if "name" in it.get("meta", {})}


def read_request(doc: Any, now_s: int) -> Translated:
    """Read an ``ExecutionRequest`` (current or legacy kinds). Raises ``IvoaInvalid`` listing every field
    that cannot be read; what is readable but cannot be served is in ``refusals``."""
    r = _Reader(now_s)
    body = r.mapping(doc, "")
    if body is None:
        raise IvoaInvalid("the request body must be an ExecutionRequest object", r.errors)
    r.fields(body, REQUEST_FIELDS | EXTRA_REQUEST_FIELDS, "")
    echo: dict[str, Any] = {}

    # the offer set's name (an extension: meta.name on the request)
    if "meta" in body:
        m = r.mapping(body["meta"], "/meta")
        if m is not None:
            r.fields(m, META_FIELDS, "/meta")
            name = r.text(m, "name", "/meta")
            if name is not None:
                echo["name"] = name

    # executable
    if body.get("executable") is None:
        r.refusals.append("the request names no executable; there is nothing to run")
    else:
        ex = r.mapping(body["executable"], "/executable")
        if ex is not None:
            echo["executable"] = r.component(ex, "executable", EXECUTABLE_FIELDS, "/executable")

    # data, storage and top-level volumes (names are what volumes and storage refer to)
    data = _list(r, body, "data")
    echo_data = [
        _data(r, d, f"/data/{i}") for i, d in enumerate(data) if r.mapping(d, f"/data/{i}") is not None
    ]
    storage = _list(r, body, "storage")
    echo_storage = [
        _storage(r, s, f"/storage/{i}")
        for i, s in enumerate(storage)
        if r.mapping(s, f"/storage/{i}") is not None
    ]
    volumes = _list(r, body, "volumes")
    echo_volumes = [
        _volume(r, v, f"/volumes/{i}")
        for i, v in enumerate(volumes)
        if r.mapping(v, f"/volumes/{i}") is not None
    ]
    data_names, storage_names = _names(echo_data), _names(echo_storage)
    for i, st in enumerate(echo_storage):
        for j, ref in enumerate(st.get("data", [])):
            if not _member(ref, data_names):
                r.fail(f"/storage/{i}/data/{j}", f"names no data resource: {ref!r}")
    for i, d in enumerate(echo_data):
        ref = d.get("storage")
        if ref is not None and not _member(ref, storage_names):
            r.fail(f"/data/{i}/storage", f"names no storage resource: {ref!r}")
    for i, v in enumerate(echo_volumes):
        refs = v.get("resources", []) + ([v["resource"]] if "resource" in v else [])
        for ref in refs:
            if not _member(ref, data_names) and not _member(ref, storage_names):
                r.fail(f"/volumes/{i}", f"mounts {ref!r}, which names no data or storage resource")
    if echo_data:
        echo["data"] = echo_data
    if echo_storage:
        echo["storage"] = echo_storage

    # compute
    cores = memory = None
    compute: dict[str, Any]
    cores_req: tuple[int, int | None] | None
    mem_req: tuple[int, int | None] | None
    if body.get("compute") is None:
        compute = {
            "kind": kind_uri("compute", "simple-compute-resource"),
            "meta": {"name": DEFAULT_COMPUTE_NAME},
        }
        r.notes.append(("INFO", f"no compute given: default {DEFAULT_CORES} core, {DEFAULT_MEMORY_GIB} GiB"))
        cores_req, mem_req = (DEFAULT_CORES, None), (DEFAULT_MEMORY_GIB * 1024, None)
    else:
        c = r.mapping(body["compute"], "/compute")
        compute = r.component(c, "compute", COMPUTE_FIELDS, "/compute") if c is not None else {}
        compute.pop("cores", None)
        compute.pop("memory", None)
        compute.pop("volumes", None)
        c = c or {}
        cores = r.mapping(c["cores"], "/compute/cores") if c.get("cores") is not None else None
        memory = r.mapping(c["memory"], "/compute/memory") if c.get("memory") is not None else None
        cores_req = _minmax(r, cores, "/compute/cores", DEFAULT_CORES, 1, "cores")
        if cores_req is not None and cores_req[0] > MAX_CORES:
            r.refusals.append(f"cores: {cores_req[0]} is more than any host offers")
            cores_req = (MAX_CORES, None)
        mem_req = _memory(r, memory)
        mounts = _mounts(r, c.get("volumes"), echo_volumes, _names(echo_volumes))
        if mounts:
            compute["volumes"] = mounts
    echo["compute"] = compute
    if echo_volumes and "volumes" not in compute:
        compute["volumes"] = echo_volumes  # mounts nobody named from compute: still echoed, never dropped

    # schedule
    start, latest, duration = _schedule(r, body.get("schedule"))

    if r.errors:
        raise IvoaInvalid(r.errors[0].detail, r.errors)
    assert cores_req is not None
    assert mem_req is not None
    component: dict[str, Any] = {"name": COMPONENT, "resources": {}, "elastic": {}}
    for rc, (low, high) in (("VCPU", cores_req), ("MEMORY_MB", mem_req)):
        if high is None:
            component["resources"][rc] = low  # the `largest` strategy may offer up to 2x
        else:
            component["elastic"][rc] = {"min": low, "max": min(high, 2 * low)}
    if not component["resources"]:
        del component["resources"]
    if not component["elastic"]:
        del component["elastic"]
    slot = {
        "components": [component],
        "start_within": f"{instant(start)}/{instant(latest)}",
        "duration": duration,
    }
    echo["schedule"] = {"start": f"{instant(start)}/{instant(latest)}", "duration": duration_text(duration)}
    return Translated(slot, echo, r.notes, r.refusals)


def _list(r: _Reader, body: dict[str, Any], key: str) -> list[Any]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        r.fail(f"/{key}", "must be a list")
        return []
    return value


def _data(r: _Reader, d: dict[str, Any], where: str) -> dict[str, Any]:
    out = r.component(d, "data", {k: v | {"storage"} for k, v in DATA_FIELDS.items()}, where)
    if "storage" in out and not isinstance(out["storage"], str):
        r.fail(f"{where}/storage", "must be a string (a storage resource's name)")
    return out


def _storage(r: _Reader, s: dict[str, Any], where: str) -> dict[str, Any]:
    out = r.component(s, "storage", STORAGE_FIELDS, where)
    refs = out.get("data")
    if refs is not None and (not isinstance(refs, list) or not all(isinstance(x, str) for x in refs)):
        r.fail(f"{where}/data", "must be a list of data resource names")
        out.pop("data")
    size = out.get("size")
    if size is not None:
        m = r.mapping(size, f"{where}/size")
        if m is not None:
            r.fields(m, MINMAX_FIELDS, f"{where}/size")
            low, high = r.amount(m, "min", f"{where}/size"), r.amount(m, "max", f"{where}/size")
            if low is not None and high is not None and low > high:
                r.refusals.append(f"{where.lstrip('/')}.size: min {low} exceeds max {high}")
    return out


def _volume(r: _Reader, v: dict[str, Any], where: str) -> dict[str, Any]:
    out = r.component(v, "volume", VOLUME_FIELDS, where)
    mode = out.get("mode")
    if mode is not None and mode not in ("READONLY", "READWRITE"):
        r.fail(f"{where}/mode", f"must be READONLY or READWRITE, got {mode!r}")
    refs = out.get("resources")
    if refs is not None and (not isinstance(refs, list) or not all(isinstance(x, str) for x in refs)):
        r.fail(f"{where}/resources", "must be a list of data or storage resource names")
        out.pop("resources")
    for key in ("path", "resource", "cardinality"):
        if key in out and not isinstance(out[key], str):
            r.fail(f"{where}/{key}", "must be a string")
            out.pop(key)
    return out


def _mounts(
    r: _Reader, value: Any, volumes: list[dict[str, Any]], by_name: dict[str, int]
) -> list[dict[str, Any]]:
    """``compute.volumes``: mounts inline (the spec) or names of top-level ``volumes`` (the examples)."""
    if value is None:
        return []
    if not isinstance(value, list):
        r.fail("/compute/volumes", "must be a list of volume mounts or of their names")
        return []
    out = []
    for i, item in enumerate(value):
        where = f"/compute/volumes/{i}"
        if isinstance(item, str):
            if item not in by_name:
                r.fail(where, f"names no volume mount: {item!r}")
                continue
            out.append(volumes[by_name[item]])
        elif isinstance(item, dict):
            out.append(_volume(r, item, where))
        else:
            r.fail(where, "must be a volume mount or a volume mount's name")
    named = {id(v) for v in out}
    out += [v for v in volumes if id(v) not in named]  # unreferenced top-level mounts: echoed too
    return out


def _minmax(
    r: _Reader, obj: dict[str, Any] | None, where: str, default: int, scale: int, what: str
) -> tuple[int, int | None] | None:
    if obj is None:
        r.notes.append(("INFO", f"no {what} given: default minimum {default}"))
        return default * scale, None
    r.fields(obj, MINMAX_FIELDS, where)
    low, high = r.amount(obj, "min", where), r.amount(obj, "max", where)
    if ("min" in obj and low is None) or ("max" in obj and high is None):
        return None
    if low is None:
        low = min(default, high) if high is not None else default
        r.notes.append(("INFO", f"no {what}.min given: minimum {low}"))
    if high is not None and low > high:
        r.refusals.append(f"{what}: min {low} exceeds max {high}")
        high = low
    return low * scale, (high * scale if high is not None else None)


def _memory(r: _Reader, obj: dict[str, Any] | None) -> tuple[int, int | None] | None:
    """``compute.memory`` in GiB (the spec), or in ``units`` (an extension: kB ... PiB) -> MiB."""
    if obj is None:
        r.notes.append(("INFO", f"no memory given: default minimum {DEFAULT_MEMORY_GIB} GiB"))
        return DEFAULT_MEMORY_GIB * 1024, None
    r.fields(obj, MEMORY_FIELDS, "/compute/memory")
    units = obj.get("units", "GiB")
    if not _member(units, UNITS_MIB):
        r.fail("/compute/memory/units", f"unknown units {units!r}; one of {', '.join(UNITS_MIB)}")
        return None
    plain = {k: v for k, v in obj.items() if k != "units"}
    got = _minmax(r, plain, "/compute/memory", DEFAULT_MEMORY_GIB, 1, "memory")
    if got is None:
        return None
    scale = UNITS_MIB[str(units)]
    low = max(1, math.ceil(got[0] * scale))
    high = math.floor(got[1] * scale) if got[1] is not None else None
    if high is not None and high < low:
        high = low
    if low > MAX_MEMORY_MIB:
        r.refusals.append(f"memory: {got[0]} {units} is more than any host offers")
        low, high = MAX_MEMORY_MIB, None
    return low, high


def _schedule(r: _Reader, value: Any) -> tuple[int, int, int]:
    """(first start, last start, duration): the requested ones or the defaults."""
    start_text = duration_value = None
    if value is not None:
        sched = r.mapping(value, "/schedule")
        if sched is not None:
            r.fields(sched, frozenset({"requested"}), "/schedule")
            if sched.get("requested") is not None:
                req = r.mapping(sched["requested"], "/schedule/requested")
                if req is not None:
                    r.fields(req, frozenset({"start", "duration"}), "/schedule/requested")
                    start_text = r.text(req, "start", "/schedule/requested")
                    duration_value = r.text(req, "duration", "/schedule/requested")
    duration = DEFAULT_DURATION_S
    if duration_value is None:
        r.notes.append(("INFO", f"no duration given: default {duration_text(DEFAULT_DURATION_S)}"))
    else:
        try:
            duration = _parse_duration(duration_value)
        except (isodate.ISO8601Error, ValueError, OverflowError) as exc:
            r.fail("/schedule/requested/duration", f"{duration_value!r} is not an ISO 8601 duration ({exc})")
        else:
            if duration <= 0:
                r.refusals.append(f"schedule.requested.duration: {duration_value} is not positive")
                duration = DEFAULT_DURATION_S
    start, latest = r.now, r.now + DEFAULT_START_WINDOW_S
    if start_text is None:
        r.notes.append(
            ("INFO", f"no start given: any start from now to now + {duration_text(DEFAULT_START_WINDOW_S)}")
        )
    else:
        try:
            start, latest = parse_start_interval(start_text)
        except (isodate.ISO8601Error, ValueError, OverflowError):
            r.fail(
                "/schedule/requested/start",
                f"{start_text!r} is not an ISO 8601 interval such as 2026-12-01T10:00Z/PT2H",
            )
            start, latest = r.now, r.now
        else:
            if out_of_range := time_problems(("/schedule/requested/start", start), ("", latest)):
                r.fail("/schedule/requested/start", f"{start_text!r}: {out_of_range[0].detail}")
                start, latest = r.now, r.now
            elif latest < start:
                r.refusals.append(f"schedule.requested.start: {start_text} ends before it starts")
                latest = start
            elif latest < r.now:
                r.refusals.append(f"schedule.requested.start: {start_text} is in the past")
    return start, latest, duration


def _member(value: Any, names: Collection[str]) -> bool:
    """``value in names`` for a value from a client's document: anything but a string is simply not a
    member (a list or object would make ``in`` on a set or dict raise TypeError, i.e. a 500)."""
    return isinstance(value, str) and value in names


# -- updates --------------------------------------------------------------------------------------------


def read_update(doc: Any) -> str:
    """An ``EnumValueUpdate`` of ``phase`` -> ACCEPTED, REJECTED or CANCELLED."""
    r = _Reader(0)
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


# -- storage of the request documents -------------------------------------------------------------------


# -- the service ----------------------------------------------------------------------------------------


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


__all__ = [
    "CURRENT_BASE",
    "LEGACY_BASE",
    "SESSION_KIND",
    "IvoaInvalid",
    "IvoaRefused",
    "IvoaService",
    "canonical_kind",
    "parse_start_interval",
    "read_request",
    "read_update",
    "session_phase",
]
