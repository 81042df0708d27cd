"""An ``ExecutionRequest`` read into one find-slot request plus the document echoed in every offer.

What the client sent beyond compute and schedule (names, executable, storage, data, volume mounts) is
not part of a find-slot request; it is kept verbatim (canonicalised) in the echo. See docs/ivoa.md,
"Translation of a request".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import isodate

from slotbroker.domain.limits import time_problems
from slotbroker.services.protocols.ivoa.errors import IvoaInvalid
from slotbroker.services.protocols.ivoa.iso8601 import (
    duration_text,
    instant,
    parse_duration,
    parse_start_interval,
)
from slotbroker.services.protocols.ivoa.reader import Reader, member, names_of
from slotbroker.services.protocols.ivoa.vocabulary import (
    COMPONENT,
    COMPUTE_FIELDS,
    DATA_FIELDS,
    DEFAULT_COMPUTE_NAME,
    DEFAULT_CORES,
    DEFAULT_DURATION_S,
    DEFAULT_MEMORY_GIB,
    DEFAULT_START_WINDOW_S,
    EXECUTABLE_FIELDS,
    EXTRA_REQUEST_FIELDS,
    MAX_CORES,
    MAX_MEMORY_MIB,
    MEMORY_FIELDS,
    META_FIELDS,
    MINMAX_FIELDS,
    REQUEST_FIELDS,
    STORAGE_FIELDS,
    UNITS_MIB,
    VOLUME_FIELDS,
    kind_uri,
)


@dataclass
class Translated:
    """A request read: the find-slot document, what to echo, and why it cannot be served (if so)."""

    slot: dict[str, Any]
    echo: dict[str, Any]
    notes: list[tuple[str, str]] = field(default_factory=list)  # (level, text): defaults, aliases
    refusals: list[str] = field(default_factory=list)  # readable, but cannot be served: result NO


def read_request(doc: Any, now_s: int) -> Translated:
    """Read an ``ExecutionRequest`` (current or legacy kinds). Raises ``IvoaInvalid`` listing every field
    that cannot be read; what is readable but cannot be served is in ``refusals``."""
    r = Reader(now_s)
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
    data_names, storage_names = names_of(echo_data), names_of(echo_storage)
    for i, st in enumerate(echo_storage):
        for j, ref in enumerate(st.get("data", [])):
            if not member(ref, data_names):
                r.fail(f"/storage/{i}/data/{j}", f"names no data resource: {ref!r}")
    for i, d in enumerate(echo_data):
        ref = d.get("storage")
        if ref is not None and not member(ref, storage_names):
            r.fail(f"/data/{i}/storage", f"names no storage resource: {ref!r}")
    for i, v in enumerate(echo_volumes):
        refs = v.get("resources", []) + ([v["resource"]] if "resource" in v else [])
        for ref in refs:
            if not member(ref, data_names) and not member(ref, storage_names):
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
        r.notes.append(("INFO", f"compute.cores: none given, default {DEFAULT_CORES} (exactly)"))
        r.notes.append(("INFO", f"compute.memory: none given, default {DEFAULT_MEMORY_GIB} GiB (exactly)"))
        cores_req = (DEFAULT_CORES, DEFAULT_CORES)
        mem_req = (DEFAULT_MEMORY_GIB * 1024, DEFAULT_MEMORY_GIB * 1024)
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
        mounts = _mounts(r, c.get("volumes"), echo_volumes, names_of(echo_volumes))
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


def _list(r: Reader, body: dict[str, Any], key: str) -> list[Any]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        r.fail(f"/{key}", "must be a list")
        return []
    return value


def _data(r: Reader, d: dict[str, Any], where: str) -> dict[str, Any]:
    out = r.component(d, "data", {k: v | {"storage"} for k, v in DATA_FIELDS.items()}, where)
    if "storage" in out and not isinstance(out["storage"], str):
        r.fail(f"{where}/storage", "must be a string (a storage resource's name)")
    return out


def _storage(r: Reader, s: dict[str, Any], where: str) -> dict[str, Any]:
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


def _volume(r: Reader, v: dict[str, Any], where: str) -> dict[str, Any]:
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
    r: Reader, value: Any, volumes: list[dict[str, Any]], by_name: dict[str, int]
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
    r: Reader, obj: dict[str, Any] | None, where: str, default: int, scale: int, what: str
) -> tuple[int, int | None] | None:
    if obj is None:  # a default we invent is exactly that: no strategy doubles it
        r.notes.append(("INFO", f"compute.{what}: none given, default {default} (exactly)"))
        return default * scale, default * scale
    r.fields(obj, MINMAX_FIELDS, where)
    low, high = r.amount(obj, "min", where), r.amount(obj, "max", where)
    if ("min" in obj and low is None) or ("max" in obj and high is None):
        return None
    if low is None:
        low = min(default, high) if high is not None else default
        r.notes.append(("INFO", f"compute.{what}.min: none given, default {low}"))
    if high is not None and low > high:
        r.refusals.append(f"{what}: min {low} exceeds max {high}")
        high = low
    return low * scale, (high * scale if high is not None else None)


def _memory(r: Reader, obj: dict[str, Any] | None) -> tuple[int, int | None] | None:
    """``compute.memory`` in GiB (the spec), or in ``units`` (an extension: kB ... PiB) -> MiB."""
    if obj is None:
        r.notes.append(("INFO", f"compute.memory: none given, default {DEFAULT_MEMORY_GIB} GiB (exactly)"))
        return DEFAULT_MEMORY_GIB * 1024, DEFAULT_MEMORY_GIB * 1024
    r.fields(obj, MEMORY_FIELDS, "/compute/memory")
    units = obj.get("units", "GiB")
    if not member(units, UNITS_MIB):
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


def _schedule(r: Reader, value: Any) -> tuple[int, int, int]:
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
        r.notes.append(
            ("INFO", f"schedule.requested.duration: none given, default {duration_text(DEFAULT_DURATION_S)}")
        )
    else:
        try:
            duration = parse_duration(duration_value)
        except (isodate.ISO8601Error, ValueError, OverflowError) as exc:
            r.fail("/schedule/requested/duration", f"{duration_value!r} is not an ISO 8601 duration ({exc})")
        else:
            if duration <= 0:
                r.refusals.append(f"schedule.requested.duration: {duration_value} is not positive")
                duration = DEFAULT_DURATION_S
    start, latest = r.now, r.now + DEFAULT_START_WINDOW_S
    if start_text is None:
        r.notes.append(
            (
                "INFO",
                "schedule.requested.start: none given, default any start from now to now + "
                f"{duration_text(DEFAULT_START_WINDOW_S)}",
            )
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
