"""Many leases and their rows in one statement set, for a compaction pass (services/booking/lease_compact.py).

A pass examines up to a thousand leases; reading each in a read transaction of its own (its consumer row,
its rows with their providers, the calendar generation) costs three statements and a transaction per
lease. These read the same columns for a whole batch: one statement for the consumer rows, one for the
allocation rows (with the provider columns ``LeaseRepository.rows_from`` gives, in the same order), in
the caller's transaction, so the caller can read the calendar generation in it too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from slotbroker.domain.claims import ConsumerKind
from slotbroker.store.tables import allocations, consumers, providers

CHUNK = 500  # ids per statement: far below every backend's bound-parameter limit

_HEADS = select(
    consumers.c.id,
    consumers.c.uuid,
    consumers.c.name,
    consumers.c.project,
    consumers.c.status,
    consumers.c.start_s,
    consumers.c.end_s,
    consumers.c.generation,
).where(
    consumers.c.uuid.in_(bindparam("uuids", expanding=True)),
    consumers.c.kind == ConsumerKind.LEASE.value,
)

# A lease's allocation row with its provider, as compaction and rehosting read it (``rows_from`` and
# ``rows_of`` select these, in this order).
ROW_WITH_PROVIDER = (
    allocations.c.id,
    allocations.c.resource_class,
    allocations.c.amount,
    allocations.c.vlan_tag,
    providers.c.id.label("pid"),
    providers.c.uuid,
    providers.c.name,
    providers.c.kind,
    providers.c.parent_id,
)

_ROWS = (
    select(*ROW_WITH_PROVIDER, allocations.c.consumer_id)  # the consumer last: rows_from's columns first
    .select_from(allocations.join(providers, providers.c.id == allocations.c.provider_id))
    .where(allocations.c.consumer_id.in_(bindparam("cids", expanding=True)), allocations.c.end_s > 0)
    .order_by(allocations.c.consumer_id, allocations.c.id)
)


def lease_heads(session: Session, lease_ids: Sequence[str]) -> dict[str, Any]:
    """Lease uuid -> its consumer row (id, uuid, name, project, status, start_s, end_s, generation), for
    those of ``lease_ids`` that are leases; the others are absent."""
    out: dict[str, Any] = {}
    ids = sorted(set(lease_ids))
    conn = session.connection()
    for i in range(0, len(ids), CHUNK):
        for row in conn.execute(_HEADS, {"uuids": ids[i : i + CHUNK]}):
            out[str(row.uuid)] = row
    return out


def rows_of(session: Session, consumer_ids: Sequence[int]) -> dict[int, list[Any]]:
    """Consumer id -> every allocation row it holds, with its provider, as ``LeaseRepository.rows_from``
    (consumer, 0) gives them: (id, resource_class, amount, vlan_tag, pid, uuid, name, kind, parent_id,
    then consumer_id), by row id. A consumer with no row maps to an empty list."""
    out: dict[int, list[Any]] = defaultdict(list)
    ids = sorted(set(consumer_ids))
    conn = session.connection()
    for i in range(0, len(ids), CHUNK):
        for row in conn.execute(_ROWS, {"cids": ids[i : i + CHUNK]}):
            out[int(row.consumer_id)].append(row)
    return {cid: out.get(cid, []) for cid in ids}
