"""The find-slot request: what to place, under which constraints, and when.

Validated with pydantic (``extra="forbid"``); every message starts with the offending field's name so a
client can show it next to the input. ``parse_request`` turns pydantic's errors into the domain's
``ValidationFailed`` with JSON pointers. Times become integer seconds since the epoch here, once, so the
engine never sees a datetime.

One module on purpose: the request's parts (components, groups, links, ports, times) validate against
each other, and a reader checks what a request may say in one place.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Self

import isodate
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from slotbroker.domain.errors import FieldError, ValidationFailed, pointer, problems_detail
from slotbroker.domain.limits import TIME_MAX, TIME_MAX_S, TIME_MIN_S
from slotbroker.domain.providers import AggregateName, ProviderName, TraitName
from slotbroker.domain.resource_classes import CUSTOM_RE, naming_problem, unknown_problem
from slotbroker.domain.strict import Int, Number
from slotbroker.domain.traits import trait_problem
from slotbroker.domain.vlans import VLAN_MAX, VLAN_MIN

DEFAULT_MAX_RANGE_S = 90 * 86400
MAX_INSTANCES = 1000
ComponentName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,62}$")]


class Policy(StrEnum):
    EARLIEST = "earliest"
    FIRST_FIT = "first_fit"
    BEST_FIT = "best_fit"
    SPREAD = "spread"
    LATENCY = "latency"
    LEAST_GAP = "least_gap"


class GroupKind(StrEnum):
    SAME_SITE = "same_site"
    DIFFERENT_SITES = "different_sites"
    SPREAD = "spread"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ElasticRange(_Model):
    """Take at least ``min`` and, where the chosen host has room for the whole window, up to ``max``."""

    min: Int = Field(ge=1, le=2**53)
    max: Int = Field(ge=1, le=2**53)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min > self.max:
            raise ValueError(f"elastic: min ({self.min}) exceeds max ({self.max})")
        return self


class Near(_Model):
    lat: Number = Field(ge=-90, le=90)
    lon: Number = Field(ge=-180, le=180)
    radius_km: Number = Field(gt=0, le=20040)


def _class_problem(name: str, info: ValidationInfo) -> str | None:
    if "known_classes" in (info.context or {}):
        return None  # checked after validation, each pointing at its key (``unknown_classes``)
    why = naming_problem(name)
    custom = (info.context or {}).get("custom_classes")
    if why is None and custom is not None and CUSTOM_RE.match(name) and name not in custom:
        why = f"custom resource class {name!r} is not registered"
    return why


class Component(_Model):
    """``count`` identical instances, each needing ``resources`` (+ ``elastic``) on one host.

    All instances of a component go to one site (a component is a site-local group); group constraints
    relate components to each other."""

    name: ComponentName
    count: Int = Field(1, ge=1, le=MAX_INSTANCES)
    resources: dict[str, Int] = Field(default_factory=dict, description="Per-instance amounts.")
    elastic: dict[str, ElasticRange] = Field(default_factory=dict)
    required_traits: list[TraitName] = Field(default_factory=list)
    forbidden_traits: list[TraitName] = Field(default_factory=list)
    member_of: list[AggregateName] = Field(default_factory=list, description="Any of these aggregates.")
    site: ProviderName | None = None
    host: ProviderName | None = None
    near: Near | None = None

    @field_validator("resources")
    @classmethod
    def _amounts(cls, value: dict[str, int], info: ValidationInfo) -> dict[str, int]:
        for rc, amount in value.items():
            why = _class_problem(rc, info)
            if why:
                raise ValueError(f"resources: {why}")
            if amount < 1:
                raise ValueError(f"resources.{rc}: amount must be >= 1, got {amount}")
            if amount > 2**53:
                raise ValueError(f"resources.{rc}: amount {amount} is too large")
        return value

    @field_validator("elastic")
    @classmethod
    def _elastic_names(cls, value: dict[str, ElasticRange], info: ValidationInfo) -> dict[str, ElasticRange]:
        for rc in value:
            why = _class_problem(rc, info)
            if why:
                raise ValueError(f"elastic: {why}")
        return value

    @field_validator("required_traits", "forbidden_traits")
    @classmethod
    def _traits(cls, value: list[str], info: ValidationInfo) -> list[str]:
        custom = (info.context or {}).get("custom_traits")
        if custom is not None:
            for t in value:
                why = trait_problem(t, custom)
                if why:
                    raise ValueError(f"{info.field_name}: {why}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if not self.resources and not self.elastic and self.site is None and self.host is None:
            # A component with no resources is only meaningful as an endpoint pinned to a site or host
            # (where a link or facility port attaches); anywhere else it is surely a mistake.
            raise ValueError(f"resources: component {self.name!r} asks for no resources and is not pinned")
        both = set(self.resources) & set(self.elastic)
        if both:
            raise ValueError(f"elastic: {sorted(both)} also appear in resources; name a class in one only")
        clash = set(self.required_traits) & set(self.forbidden_traits)
        if clash:
            raise ValueError(f"forbidden_traits: {sorted(clash)} are also required")
        return self

    def minimum(self) -> dict[str, int]:
        """Per-instance amounts the placement must guarantee (elastic classes at their min)."""
        return {**self.resources, **{rc: r.min for rc, r in self.elastic.items()}}


class Group(_Model):
    kind: GroupKind
    components: list[ComponentName] = Field(min_length=2, max_length=64)


class LinkRequest(_Model):
    a: ComponentName
    b: ComponentName
    bandwidth_gbps: Int = Field(ge=1, le=1_000_000)
    max_latency_ms: Number | None = Field(None, gt=0, le=100_000)

    @model_validator(mode="after")
    def _two_ends(self) -> Self:
        if self.a == self.b:
            raise ValueError("b: a link joins two different components")
        return self


class PortRequest(_Model):
    site: ProviderName
    port: ProviderName
    component: ComponentName
    vlan_count: Int | None = Field(None, ge=1, le=VLAN_MAX)
    vlans: list[Int] | None = Field(None, min_length=1, max_length=VLAN_MAX)
    bandwidth_gbps: Int = Field(0, ge=0, le=1_000_000)

    @field_validator("vlans")
    @classmethod
    def _tags(cls, value: list[int] | None) -> list[int] | None:
        if value is not None:
            for t in value:
                if not VLAN_MIN <= t <= VLAN_MAX:
                    raise ValueError(f"vlans: tag {t} is outside {VLAN_MIN}-{VLAN_MAX}")
            if len(set(value)) != len(value):
                raise ValueError("vlans: tags must be distinct")
        return value

    @model_validator(mode="after")
    def _one_way(self) -> Self:
        if self.vlan_count is not None and self.vlans is not None:
            raise ValueError("vlans: give vlan_count or vlans, not both")
        return self

    @property
    def tag_count(self) -> int:
        return len(self.vlans) if self.vlans is not None else (self.vlan_count or 1)


def _seconds(value: Any, field: str) -> Any:
    """``PT4H``, ``P1DT2H`` or an int of seconds -> int seconds; months/years are ambiguous."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, timedelta):
        return int(value.total_seconds())
    if isinstance(value, str):
        try:
            d = isodate.parse_duration(value)
        except (isodate.ISO8601Error, ValueError):
            raise ValueError(f"{field}: {value!r} is not an ISO 8601 duration such as PT4H") from None
        if not isinstance(d, timedelta):
            raise ValueError(f"{field}: {value!r} uses months or years; give days or hours")
        return int(d.total_seconds())
    raise ValueError(f"{field}: give an ISO 8601 duration such as PT4H or a number of seconds")


def _instant(text: str, field: str) -> datetime:
    try:
        dt: datetime = isodate.parse_datetime(text)
    except (isodate.ISO8601Error, ValueError):
        raise ValueError(f"{field}: {text!r} is not an ISO 8601 date-time") from None
    if dt.tzinfo is None:
        raise ValueError(f"{field}: {text!r} needs a UTC offset such as Z or +02:00")
    return dt


def parse_interval(text: str, field: str = "start_within") -> tuple[int, int]:
    """ISO 8601 interval ``start/end``, ``start/duration`` or ``duration/end`` -> (start_s, end_s)."""
    parts = text.split("/")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"{field}: {text!r} is not an ISO 8601 interval such as 2025-01-01T00:00Z/PT48H")
    a, b = parts
    try:
        if a.startswith("P"):
            end = _instant(b, field)
            start = end - timedelta(seconds=_seconds(a, field))
        else:
            start = _instant(a, field)
            end = start + timedelta(seconds=_seconds(b, field)) if b.startswith("P") else _instant(b, field)
    except OverflowError:
        raise ValueError(f"{field}: {text!r} reaches past the supported times") from None
    return math.ceil(start.timestamp()), math.floor(end.timestamp())


class SlotRequest(_Model):
    """Find windows where every component (and its links and ports) fits for the whole duration."""

    components: list[Component] = Field(min_length=1, max_length=64)
    groups: list[Group] = Field(default_factory=list, max_length=64)
    links: list[LinkRequest] = Field(default_factory=list, max_length=256)
    facility_ports: list[PortRequest] = Field(default_factory=list, max_length=64)
    earliest_start: AwareDatetime | None = None
    latest_end: AwareDatetime | None = None
    start_within: str | None = Field(None, description="ISO 8601 interval the start must fall in (IVOA).")
    duration: int | None = Field(None, description="Fixed duration: ISO 8601 (PT4H) or seconds.")
    min_duration: int | None = None
    max_duration: int | None = None
    limit: Int = Field(5, ge=1, le=50, description="How many windows to return.")
    policy: Policy = Policy.EARLIEST
    alternates: Int = Field(3, ge=0, le=20, description="Alternate hosts per component and window.")
    explain: Annotated[bool, Strict()] = Field(
        True,
        description="Explain an empty answer (what blocks it, the earliest start if relaxed). False: an "
        "empty answer carries no explanation and costs none (a client polling 'can this start now?').",
    )

    _range_start: int = PrivateAttr(0)
    _latest_start: int = PrivateAttr(0)
    _latest_end: int = PrivateAttr(0)
    _min_d: int = PrivateAttr(0)
    _max_d: int = PrivateAttr(0)

    @field_validator("duration", "min_duration", "max_duration", mode="before")
    @classmethod
    def _durations(cls, value: Any, info: ValidationInfo) -> Any:
        return _seconds(value, str(info.field_name))

    @field_validator("duration", "min_duration", "max_duration")
    @classmethod
    def _positive(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and value <= 0:
            raise ValueError(f"{info.field_name}: must be positive, got {value} s")
        return value

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Self:
        self._check_names()
        fixed = self.duration is not None
        if fixed and (self.min_duration is not None or self.max_duration is not None):
            raise ValueError("duration: give duration or min_duration/max_duration, not both")
        if not fixed and (self.min_duration is None or self.max_duration is None):
            raise ValueError("duration: give duration, or both min_duration and max_duration")
        min_d = self.duration if self.duration is not None else self.min_duration
        max_d = self.duration if self.duration is not None else self.max_duration
        assert min_d is not None
        assert max_d is not None
        if min_d > max_d:
            raise ValueError("max_duration: must not be below min_duration")
        end = math.floor(self.latest_end.timestamp()) if self.latest_end else None
        if self.start_within is not None:
            if self.earliest_start is not None:
                raise ValueError("start_within: give start_within or earliest_start, not both")
            start, latest_start = parse_interval(self.start_within)
            if latest_start < start:
                raise ValueError("start_within: the interval ends before it starts")
            end = latest_start + max_d if end is None else min(end, latest_start + max_d)
        elif self.earliest_start is not None:
            start = math.ceil(self.earliest_start.timestamp())
            if end is None:
                raise ValueError("latest_end: required with earliest_start")
            latest_start = end - min_d
        else:
            raise ValueError("earliest_start: give earliest_start and latest_end, or start_within")
        # blame the field the client sent: start_within implies an end when latest_end is absent
        begin_field = "earliest_start" if self.start_within is None else "start_within"
        if start < TIME_MIN_S:
            raise ValueError(f"{begin_field}: must not be before 1970")
        if end > TIME_MAX_S:
            late_end = self.latest_end is not None and self.latest_end.timestamp() > TIME_MAX_S
            raise ValueError(
                f"{'latest_end' if late_end else begin_field}: must not be after {TIME_MAX.isoformat()}"
            )
        if end <= start:
            raise ValueError("latest_end: must be after the earliest start")
        if min_d > end - start:
            raise ValueError(f"duration: {min_d} s does not fit in the range of {end - start} s")
        max_range = int((info.context or {}).get("max_range_s", DEFAULT_MAX_RANGE_S))
        if end - start > max_range:
            raise ValueError(
                f"latest_end: the search range is {(end - start) / 86400:.1f} days, "
                f"longer than the maximum {max_range / 86400:.1f} days"
            )
        self._range_start, self._latest_end = start, end
        self._latest_start = min(latest_start, end - min_d)
        self._min_d, self._max_d = min_d, max_d
        return self

    def _check_names(self) -> None:
        names = [c.name for c in self.components]
        seen: set[str] = set()
        for n in names:
            if n in seen:
                raise ValueError(f"components: name {n!r} is used twice")
            seen.add(n)
        for g in self.groups:
            for n in g.components:
                if n not in seen:
                    raise ValueError(f"groups: unknown component {n!r}")
        for lk in self.links:
            for n in (lk.a, lk.b):
                if n not in seen:
                    raise ValueError(f"links: unknown component {n!r}")
        for p in self.facility_ports:
            if p.component not in seen:
                raise ValueError(f"facility_ports: unknown component {p.component!r}")

    # integer-seconds view used by the engine
    @property
    def range_start_s(self) -> int:
        return self._range_start

    @property
    def latest_start_s(self) -> int:
        return self._latest_start

    @property
    def latest_end_s(self) -> int:
        return self._latest_end

    @property
    def min_duration_s(self) -> int:
        return self._min_d

    @property
    def max_duration_s(self) -> int:
        return self._max_d

    @property
    def instances(self) -> int:
        return sum(c.count for c in self.components)


def parse_request(
    data: Any,
    *,
    max_range_s: int = DEFAULT_MAX_RANGE_S,
    custom_classes: frozenset[str] | None = None,
    custom_traits: frozenset[str] | None = None,
    known_classes: frozenset[str] | None = None,
) -> SlotRequest:
    """Validate a request document; raise ``ValidationFailed`` listing each field with its pointer.

    ``known_classes`` (the classes some inventory has, and registered custom ones): any other
    non-standard class is refused rather than answered with "nothing fits"."""
    ctx: dict[str, Any] = {"max_range_s": max_range_s}
    if custom_classes is not None:
        ctx["custom_classes"] = custom_classes
    if custom_traits is not None:
        ctx["custom_traits"] = custom_traits
    if known_classes is not None:
        ctx["known_classes"] = known_classes
    try:
        req = SlotRequest.model_validate(data, context=ctx)
    except ValidationError as exc:
        errors = []
        for e in exc.errors():
            loc = [p for p in e["loc"] if isinstance(p, str | int)]
            msg = str(e["msg"]).removeprefix("Value error, ")
            if loc and not msg.startswith(f"{loc[-1]}:") and ":" not in msg.split(" ")[0]:
                msg = f"{'.'.join(str(p) for p in loc)}: {msg}"
            errors.append(FieldError(pointer(*loc), msg))
        raise ValidationFailed(problems_detail("the request", errors), errors) from None
    if known_classes is not None:
        unknown = unknown_classes(req, known_classes)
        if unknown:
            more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
            raise ValidationFailed(f"{unknown[0].detail}{more}", unknown)
    return req


def unknown_classes(req: SlotRequest, known: frozenset[str]) -> list[FieldError]:
    """Each class a component names that neither is standard nor in ``known``, pointing at its key."""
    errors = []
    for i, comp in enumerate(req.components):
        for where, names in (("resources", comp.resources), ("elastic", comp.elastic)):
            for rc in names:
                why = unknown_problem(rc, known)
                if why:
                    errors.append(FieldError(pointer("components", i, where, rc), why))
    return errors
