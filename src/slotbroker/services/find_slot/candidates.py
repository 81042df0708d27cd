"""Allocation candidates, Placement-style, but time-bounded and computed on the calendar index.

``GET /v1/allocation-candidates?resources=VCPU:8,MEMORY_MB:32768&required=HW_X,!CUSTOM_Y&member_of=in:a,b
&limit=10&start=...&end=...`` answers like OpenStack Placement's ``GET /allocation_candidates``:
``allocation_requests`` (each ``{allocations: {provider_uuid: {resources}}, id}``) and
``provider_summaries`` (``{uuid: {resources: {class: {capacity, used}}, traits}}``). The difference: free
capacity is *capacity minus peak usage over [start, end)* (default: the next hour), and every allocation
request carries an ``id`` that ``POST /v1/claims`` accepts as it is.

The filter is numpy over all hosts at once: one ``host_free`` per requested class (block-max grid of the
calendar index), unit rules and trait/aggregate masks cached per topology. Only hosts (single-provider
candidates): slotbroker has no nested or sharing providers.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from slotbroker.domain.errors import FieldError, ValidationFailed
from slotbroker.domain.resource_classes import Standard, naming_problem, unknown_problem
from slotbroker.engine.topology import Topology
from slotbroker.services.booking.allocation_request_bodies import ARBody, Instance, ProviderUuids
from slotbroker.services.booking.allocation_requests import AllocationRequestService
from slotbroker.services.find_slot.calendar_cache import CalendarCache

B = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]
NAME = re.compile(r"^[A-Z0-9_]{1,255}$")
AGG = re.compile(r"^[A-Za-z0-9_.:\-]{1,200}$")
MAX_RANGE_S = 90 * 86400
DEFAULT_SPAN_S = 3600


@dataclass(frozen=True)
class CandidateQuery:
    resources: dict[str, int]
    required: tuple[frozenset[str], ...] = ()  # each group: any of these traits (Placement's in:)
    forbidden: frozenset[str] = frozenset()
    member_of: tuple[frozenset[str], ...] = ()  # each group: in any of these aggregates
    not_member_of: frozenset[str] = frozenset()
    limit: int | None = None
    start_s: int = 0
    end_s: int = 0


def _bad(param: str, detail: str) -> ValidationFailed:
    return ValidationFailed(f"{param}: {detail}", [FieldError(f"#/query/{param}", detail)])


def parse_resources(text: str, known: frozenset[str] = frozenset()) -> dict[str, int]:
    """Placement's ``resources=VCPU:8,MEMORY_MB:32768`` (each class once, amounts >= 1); a class that is
    neither standard nor in ``known`` (stocked or registered) is refused, with the closest as a hint."""
    out: dict[str, int] = {}
    if not text.strip():
        raise _bad("resources", "give at least one CLASS:AMOUNT")
    for part in text.split(","):
        rc, sep, amount = part.strip().partition(":")
        if not sep or not NAME.match(rc) or not amount.strip().isdigit():
            raise _bad("resources", f"{part.strip()!r} is not CLASS:AMOUNT (e.g. VCPU:8)")
        why = naming_problem(rc) or unknown_problem(rc, known)
        if why:
            raise _bad("resources", why)
        if rc in out:
            raise _bad("resources", f"{rc} is given twice")
        n = int(amount)
        if not 1 <= n <= 2**53:
            raise _bad("resources", f"{rc}: amount must be between 1 and 2**53")
        out[rc] = n
    return out


def parse_required(values: list[str]) -> tuple[tuple[frozenset[str], ...], frozenset[str]]:
    """``required=A,!B`` (all of A, none of B); ``required=in:A,C`` (any of them); repeatable (AND)."""
    groups: list[frozenset[str]] = []
    forbidden: set[str] = set()
    for value in values:
        if value.startswith("in:"):
            names = [n.strip() for n in value[3:].split(",")]
            if not names or not all(NAME.match(n) for n in names):
                raise _bad("required", f"{value!r}: in: takes trait names")
            groups.append(frozenset(names))
            continue
        for raw in value.split(","):
            t = raw.strip()
            bang = t.startswith("!")
            name = t[1:] if bang else t
            if not NAME.match(name):
                raise _bad("required", f"{t!r} is not a trait name (or !TRAIT)")
            if bang:
                forbidden.add(name)
            else:
                groups.append(frozenset({name}))
    clash = {t for g in groups if len(g) == 1 for t in g} & forbidden
    if clash:
        raise _bad("required", f"{sorted(clash)} are both required and forbidden")
    return tuple(groups), frozenset(forbidden)


def parse_member_of(values: list[str]) -> tuple[tuple[frozenset[str], ...], frozenset[str]]:
    """``member_of=in:a,b`` (any), ``member_of=a`` (one), ``member_of=!in:a,b`` (none); repeatable."""
    groups: list[frozenset[str]] = []
    excluded: set[str] = set()
    for value in values:
        neg = value.startswith("!")
        v = value[1:] if neg else value
        v = v[3:] if v.startswith("in:") else v
        names = [n.strip() for n in v.split(",")]
        if not names or not all(AGG.match(n) for n in names):
            raise _bad("member_of", f"{value!r} is not in:AGG[,AGG...]")
        if neg:
            excluded.update(names)
        else:
            groups.append(frozenset(names))
    return tuple(groups), frozenset(excluded)


@dataclass
class _Static:
    """Per-topology arrays: unit rules per class, trait and aggregate masks (built lazily)."""

    topo: Topology
    units: dict[str, tuple[I64, I64, I64]] = field(default_factory=dict)
    traits: dict[str, B] = field(default_factory=dict)
    aggregates: dict[str, B] = field(default_factory=dict)
    rows: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def unit_arrays(self, rc: str) -> tuple[I64, I64, I64]:
        if rc not in self.units:
            hs = self.topo.hosts
            lo = np.array([h.inventories[rc].min_unit if rc in h.inventories else 1 for h in hs], np.int64)
            hi = np.array(
                [
                    (h.inventories[rc].max_unit or h.inventories[rc].capacity) if rc in h.inventories else 0
                    for h in hs
                ],
                np.int64,
            )
            step = np.array([h.inventories[rc].step_size if rc in h.inventories else 1 for h in hs], np.int64)
            self.units[rc] = (lo, hi, step)
        return self.units[rc]

    def trait_mask(self, t: str) -> B:
        if t not in self.traits:
            self.traits[t] = np.array([t in h.traits for h in self.topo.hosts], dtype=bool)
        return self.traits[t]

    def aggregate_mask(self, a: str) -> B:
        if a not in self.aggregates:
            self.aggregates[a] = np.array([a in h.aggregates for h in self.topo.hosts], dtype=bool)
        return self.aggregates[a]


class CandidateService:
    def __init__(
        self, calendar: CalendarCache, uuids: ProviderUuids, requests: AllocationRequestService
    ) -> None:
        self.calendar = calendar
        self.uuids = uuids
        self.requests = requests
        self._static: _Static | None = None
        self._lock = threading.Lock()

    def query(
        self,
        *,
        resources: str | None,
        required: list[str] | None = None,
        member_of: list[str] | None = None,
        limit: int | None = None,
        start_s: int | None = None,
        end_s: int | None = None,
        now_s: int | None = None,
    ) -> CandidateQuery:
        """Parse Placement-syntax parameters; errors name the parameter (``#/query/NAME``)."""
        now = int(time.time()) if now_s is None else now_s
        if resources is None:
            raise _bad("resources", "required")
        # stocked and registered classes come from the cached catalog; only asked for when a class
        # beyond the standard ones is named
        names = {part.partition(":")[0].strip() for part in resources.split(",")}
        known = frozenset[str]()
        if names - set(Standard):
            catalog = self.calendar.current(now).catalog
            known = catalog.custom_classes | catalog.stocked_classes
        res = parse_resources(resources, known)
        req_groups, forbidden = parse_required(required or [])
        mem_groups, excluded = parse_member_of(member_of or [])
        if limit is not None and limit < 1:
            raise _bad("limit", "must be a positive integer")
        s = now if start_s is None else start_s
        e = s + DEFAULT_SPAN_S if end_s is None else end_s
        if e <= s:
            raise _bad("end", "must be after start")
        if e - s > MAX_RANGE_S:
            raise _bad("end", f"the interval may span at most {MAX_RANGE_S // 86400} days")
        if e <= now:
            raise _bad("end", "the interval lies in the past")
        return CandidateQuery(res, req_groups, forbidden, mem_groups, excluded, limit, s, e)

    def _statics(self, topo: Topology) -> _Static:
        st = self._static
        if st is None or st.topo is not topo:
            with self._lock:
                st = _Static(topo, rows=np.arange(len(topo.hosts), dtype=np.int64))
                self._static = st
        return st

    def matching_rows(self, q: CandidateQuery, now_s: int | None = None) -> tuple[Any, I64]:
        """(cached index, host rows that can take ``q.resources`` over the whole interval), in row order."""
        cached = self.calendar.current(now_s)
        idx = cached.index
        topo = idx.topo
        st = self._statics(topo)
        rows = st.rows
        mask = np.ones(rows.shape[0], dtype=bool)
        for group in q.required:
            g = np.zeros_like(mask)
            for t in group:
                g |= st.trait_mask(t)
            mask &= g
        for t in q.forbidden:
            mask &= ~st.trait_mask(t)
        for group in q.member_of:
            g = np.zeros_like(mask)
            for a in group:
                g |= st.aggregate_mask(a)
            mask &= g
        for a in q.not_member_of:
            mask &= ~st.aggregate_mask(a)
        for rc, amount in q.resources.items():
            if rc not in topo.host_cap:
                return cached, np.zeros(0, dtype=np.int64)
            lo, hi, step = st.unit_arrays(rc)
            mask &= (topo.host_cap[rc] > 0) & (lo <= amount) & (hi >= amount) & (amount % step == 0)
            sel = rows[mask]
            if sel.size == 0:
                return cached, sel
            free = idx.host_free(rc, sel, q.start_s, q.end_s)
            mask[sel[free < amount]] = False
        return cached, rows[mask]

    def candidates(self, q: CandidateQuery, *, project: str = "", now_s: int | None = None) -> dict[str, Any]:
        """Placement's response shape, with an allocation-request ``id`` per entry (claimable)."""
        cached, rows = self.matching_rows(q, now_s)
        if q.limit is not None:
            rows = rows[: q.limit]
        idx = cached.index
        hosts = idx.topo.hosts
        uuid_of = self.uuids.of(hosts[int(r)].id for r in rows)
        chosen = [hosts[int(r)] for r in rows]
        bodies = [
            ARBody(
                start_s=q.start_s,
                end_s=q.end_s,
                instances=(Instance("resources", 0, uuid_of[h.id], h.name, dict(q.resources)),),
                generation=cached.generation,
            )
            for h in chosen
        ]
        ids = self.requests.create(bodies, project=project, now_s=now_s)
        # summaries: every class of each chosen host, capacity and peak usage over [start, end)
        used: dict[str, dict[int, int]] = {}
        classes = sorted({rc for h in chosen for rc in h.inventories})
        for rc in classes:
            have = np.array(
                [int(r) for r, h in zip(rows, chosen, strict=True) if rc in h.inventories], np.int64
            )
            if have.size:
                cap = idx.topo.host_cap[rc][have]
                free = idx.host_free(rc, have, q.start_s, q.end_s)
                used[rc] = dict(zip(have.tolist(), (cap - free).tolist(), strict=True))
        requests: list[dict[str, Any]] = []
        summaries: dict[str, Any] = {}
        for r, h, ar_id in zip(rows.tolist(), chosen, ids, strict=True):
            u = uuid_of[h.id]
            requests.append({"allocations": {u: {"resources": dict(q.resources)}}, "id": ar_id})
            summaries[u] = {
                "name": h.name,
                "resources": {
                    rc: {"capacity": inv.capacity, "used": used[rc][r]}
                    for rc, inv in sorted(h.inventories.items())
                },
                "traits": sorted(h.traits),
                "root_provider_uuid": u,
                "parent_provider_uuid": None,
            }
        return {
            "allocation_requests": requests,
            "provider_summaries": summaries,
            "start": q.start_s,
            "end": q.end_s,
            "calendar_generation": cached.generation,
        }


__all__ = ["CandidateQuery", "CandidateService", "parse_member_of", "parse_required", "parse_resources"]
