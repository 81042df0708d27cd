"""How far a lease can be extended now: what a refused extension answers (``max_end`` in the problem),
so the caller can ask for that instead of guessing. The lease's own items, from its current end, against
everything else live on their providers (``engine/headroom.furthest_end``), capped by the booking
policy's longest booking; the extension window and quotas are not modelled (their refusals say so
themselves). Advice, read outside the refused transaction: the claim decides."""

from __future__ import annotations

from collections import defaultdict

from slotbroker.domain.claims import ConsumerKind
from slotbroker.domain.errors import SlotbrokerError
from slotbroker.domain.limits import BookingPolicy
from slotbroker.domain.time import to_datetime
from slotbroker.engine.headroom import Booking, Pair, furthest_end
from slotbroker.store.db import Database
from slotbroker.store.unit_of_work import UnitOfWork

# refusals of an extension that answer how far the lease can be extended
EXTENSION_REFUSALS = frozenset({"capacity_conflict", "lease_too_long", "outside_extension_window"})


def add_max_end(
    exc: SlotbrokerError, db: Database, policy: BookingPolicy, lease_id: str, want_end_s: int, now_s: int
) -> None:
    """Put ``max_end`` (ISO 8601) into the refusal ``exc`` of extending ``lease_id`` to ``want_end_s``:
    the current end when the extension window is not open yet (nothing can be added now)."""
    if exc.code not in EXTENSION_REFUSALS:
        return
    closed = exc.code == "outside_extension_window"
    limit = max_end(db, policy, lease_id, want_end_s, now_s, window_closed=closed)
    if limit is not None:
        exc.extensions.setdefault("max_end", to_datetime(limit).isoformat())


def max_end(
    db: Database,
    policy: BookingPolicy,
    lease_id: str,
    want_end_s: int,
    now_s: int,
    *,
    window_closed: bool = False,
) -> int | None:
    """The furthest end (epoch seconds) up to ``want_end_s`` the lease's items fit to; None when the
    lease is gone."""
    with UnitOfWork(db, readonly=True) as uow:
        row = uow.leases.find(lease_id)
        if row is None or row.kind != ConsumerKind.LEASE.value:
            return None
        start, end = int(row.start_s), int(row.end_s)
        if window_closed:
            return end
        if policy.max_duration_s > 0:
            want_end_s = min(want_end_s, start + policy.max_duration_s)
        if want_end_s <= end:
            return end
        needs: dict[Pair, int] = defaultdict(int)
        for uuid, rc, amount, _tag in uow.leases.items_to(int(row.id), end):
            needs[(uuid, rc)] += amount
        pairs = sorted(needs)
        capacity = uow.allocations.capacities(pairs)
        used = uow.allocations.usage_on(pairs, end, want_end_s, now_s, exclude=int(row.id))
    books = [Booking((u, rc), amount, s, e) for u, rc, amount, s, e in used]
    return furthest_end(end, want_end_s, needs, capacity, books)


__all__ = ["EXTENSION_REFUSALS", "add_max_end", "max_end"]
