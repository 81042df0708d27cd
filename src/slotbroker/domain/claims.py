"""A claim: one consumer (an offer's hold or a lease) and the allocations it wants, all for one interval.

Plain frozen dataclasses, no database: the offers and leases layer builds a ``ClaimRequest`` and hands it
to ``ClaimService.claim``. Every allocation of a claim covers the consumer's half-open interval
``[start_s, end_s)`` (integer epoch seconds); a booking that needs different intervals is several
consumers. ``problems()`` reports what is wrong with the request on its own, before any database is
asked, each as a ``FieldError`` whose pointer addresses the request document (``/items/3/amount``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

from slotbroker.domain.errors import FieldError
from slotbroker.domain.limits import in_range, time_problems
from slotbroker.domain.resource_classes import Standard
from slotbroker.domain.vlans import VLAN_MAX, VLAN_MIN

MAX_ITEMS = 2_000  # keeps every statement well inside SQLite's and PostgreSQL's bind limits
MAX_AMOUNT = 2**53


class ConsumerKind(StrEnum):
    HOLD = "hold"
    LEASE = "lease"


class ConsumerStatus(StrEnum):
    """Statuses of consumers. Holds: HELD then EXPIRED, RELEASED or REJECTED (or turned into a lease).
    Leases: PENDING -> ACTIVE -> ENDED, or CANCELLED, ERROR."""

    HELD = "HELD"
    EXPIRED = "EXPIRED"
    RELEASED = "RELEASED"
    REJECTED = "REJECTED"
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    ENDED = "ENDED"
    CANCELLED = "CANCELLED"
    ERROR = "ERROR"


# A consumer in one of these statuses holds nothing: its allocations never count as usage, whatever rows
# are left. ENDED and ERROR are deliberately absent: a lease that ended (on time or early through
# ``release``) has had its allocations cut at the end, and a lease in ERROR still occupies its hardware
# until someone releases it.
FREEING_STATUSES: frozenset[str] = frozenset(
    {ConsumerStatus.RELEASED, ConsumerStatus.EXPIRED, ConsumerStatus.REJECTED, ConsumerStatus.CANCELLED}
)
# Statuses ``release`` may set; once a consumer is in one of them, releasing it again is a no-op.
RELEASE_STATUSES: frozenset[str] = FREEING_STATUSES | {ConsumerStatus.ENDED}

DEFAULT_STATUS: dict[ConsumerKind, ConsumerStatus] = {
    ConsumerKind.HOLD: ConsumerStatus.HELD,
    ConsumerKind.LEASE: ConsumerStatus.PENDING,
}


@dataclass(frozen=True)
class ConsumerSpec:
    """Who will own the allocations. A hold must say when it expires (``expires_s``, epoch seconds)."""

    kind: ConsumerKind
    project: str
    start_s: int
    end_s: int
    expires_s: int | None = None
    name: str = ""
    uuid: str | None = None  # generated when None
    status: ConsumerStatus | None = None  # HELD for holds, PENDING for leases when None

    @property
    def initial_status(self) -> ConsumerStatus:
        return self.status or DEFAULT_STATUS[self.kind]


@dataclass(frozen=True)
class ClaimItem:
    """``amount`` of ``resource_class`` on the provider ``provider_uuid``.

    A VLAN tag is an item of class ``VLAN``, amount 1, with ``vlan_tag`` set (the provider is a facility
    port); bandwidth on a link is an item of class ``BANDWIDTH_GBPS`` on the link provider.
    """

    provider_uuid: str
    resource_class: str
    amount: int
    vlan_tag: int | None = None


@dataclass(frozen=True)
class ClaimRequest:
    consumer: ConsumerSpec
    items: tuple[ClaimItem, ...] = field(default_factory=tuple)

    def problems(self, now_s: int) -> list[FieldError]:
        """Everything wrong with the request on its own (no inventory needed); empty when fine."""
        out: list[FieldError] = []
        c = self.consumer
        if not (in_range(c.start_s) and in_range(c.end_s) and (c.expires_s is None or in_range(c.expires_s))):
            # the rules below compare times; outside the supported range they mean nothing
            return time_problems(
                ("/consumer/start_s", c.start_s),
                ("/consumer/end_s", c.end_s),
                ("/consumer/expires_s", c.expires_s),
            )
        if c.end_s <= c.start_s:
            out.append(FieldError("/consumer/end_s", f"end {c.end_s} is not after start {c.start_s}"))
        elif c.end_s <= now_s:
            out.append(FieldError("/consumer/end_s", f"the interval ended at {c.end_s}, before now {now_s}"))
        if c.kind == ConsumerKind.HOLD:
            if c.expires_s is None:
                out.append(FieldError("/consumer/expires_s", "a hold needs an expiry"))
            elif c.expires_s <= now_s:
                out.append(
                    FieldError("/consumer/expires_s", f"expiry {c.expires_s} is not after now {now_s}")
                )
        elif c.expires_s is not None:
            out.append(FieldError("/consumer/expires_s", "only holds expire"))
        if c.status is not None and c.status in RELEASE_STATUSES:
            out.append(FieldError("/consumer/status", f"a new consumer cannot start as {c.status.value}"))
        if not c.project:
            out.append(FieldError("/consumer/project", "required"))
        if not self.items:
            out.append(FieldError("/items", "a claim needs at least one item"))
        if len(self.items) > MAX_ITEMS:
            out.append(FieldError("/items", f"at most {MAX_ITEMS} items"))
        for i, item in enumerate(self.items):
            out.extend(_item_problems(i, item))
        tags = Counter(
            (it.provider_uuid, it.vlan_tag) for it in self.items if it.resource_class == Standard.VLAN
        )
        for i, item in enumerate(self.items):
            if item.vlan_tag is not None and tags[(item.provider_uuid, item.vlan_tag)] > 1:
                out.append(FieldError(f"/items/{i}/vlan_tag", f"VLAN {item.vlan_tag} is claimed twice"))
        return out


def _item_problems(i: int, item: ClaimItem) -> list[FieldError]:
    at = f"/items/{i}"
    out: list[FieldError] = []
    if not 1 <= item.amount <= MAX_AMOUNT:
        out.append(FieldError(f"{at}/amount", f"amount {item.amount} must be between 1 and {MAX_AMOUNT}"))
    if item.resource_class == Standard.VLAN:
        if item.amount != 1:
            out.append(FieldError(f"{at}/amount", "a VLAN item claims exactly one tag (amount 1)"))
        if item.vlan_tag is None:
            out.append(FieldError(f"{at}/vlan_tag", "a VLAN item names its tag"))
        elif not VLAN_MIN <= item.vlan_tag <= VLAN_MAX:
            out.append(FieldError(f"{at}/vlan_tag", f"VLAN {item.vlan_tag} is outside {VLAN_MIN}-{VLAN_MAX}"))
    elif item.vlan_tag is not None:
        out.append(FieldError(f"{at}/vlan_tag", "only VLAN items carry a tag"))
    return out


@dataclass(frozen=True)
class ClaimResult:
    consumer_uuid: str
    consumer_id: int
    kind: ConsumerKind
    status: str
    start_s: int
    end_s: int
    expires_s: int | None
    allocations: int  # rows written
    attempts: int  # 1 unless a deadlock or serialization failure forced a retry


@dataclass(frozen=True)
class ReleaseResult:
    consumer_uuid: str
    status: str  # the consumer's status after the call
    already_released: bool  # True: an earlier release did the work and this call changed nothing
    allocations_deleted: int
    allocations_ended: int  # lease allocations cut short at ``now`` (their past stays on record)
