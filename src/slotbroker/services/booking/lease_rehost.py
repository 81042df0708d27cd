"""Move a lease's host capacity off hosts that failed it, onto alternates of the same site.

Why: when provisioning on a lease's host fails, the planner retries elsewhere - but work may only run on
capacity the lease owns, so "elsewhere" must first be *booked*. ``LeaseRehoster`` does that inside the
caller's transaction (the planner's commit of the retry), so the job's next attempt and the lease's
allocation change together or not at all: no attempt runs on a host the lease does not hold, and no
lease is moved for a retry that never got committed.

What a move is (``LeaseRehoster.rehost_in``):

1. lock the lease's consumer row (the order every lease writer follows: lease, then providers, then the
   calendar); only a PENDING or ACTIVE lease moves;
2. the lease's host rows that have not ended at ``now``; links and facility-port items stay as they are
   (a lease holding a *device* of one of its hosts is not moved: the device cannot follow its host);
3. for each of its hosts, the alternates: same site, same traits, same resource classes
   (``uow.leases.alternate_hosts``, the query lease moves use too), neither in ``avoid`` (hosts that failed
   before) nor already used by the lease, in name order;
4. ``ClaimService.claim_in`` claims the replacement items over [max(lease start, now), lease end) under a
   temporary consumer: its provider locks and capacity checks prove, in this transaction, that nothing is
   overbooked (and it bumps the calendar). A candidate that does not fit gives way as the one swap rule
   says (``alternates.conflicting_owner``, ``alternates.next_alternate``: the first conflicting host, for
   its first stand-in neither tried nor in use); the claimed rows then move to the lease
   (``alternates.claim_for_lease``, as lease moves do);
5. the old host rows: of a PENDING lease they are deleted (nothing of it has happened, even when its start
   event is late); of an ACTIVE one what has not started is deleted and what is running is cut at
   ``now`` (the past stays on record and keeps counting, as when a lease ends early);
6. the lease's ``generation`` is bumped: a client holding the old view must re-read it.

It all runs in a SAVEPOINT: when some host has no alternate with room, it is rolled back - nothing is
written - and the answer is None. Quotas are not re-checked: the lease keeps the same amounts over the
same times.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slotbroker.domain.claims import ClaimItem, ConsumerKind, ConsumerSpec, ConsumerStatus
from slotbroker.domain.errors import CapacityConflict, ValidationFailed
from slotbroker.domain.providers import ProviderKind
from slotbroker.services.booking.alternates import (
    MAX_SWAPS,
    claim_for_lease,
    conflicting_owner,
    next_alternate,
    repoint_placement,
)
from slotbroker.services.booking.claims import ClaimService
from slotbroker.store.repositories.leases import HostRef
from slotbroker.store.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

LIVE_LEASE = (ConsumerStatus.PENDING.value, ConsumerStatus.ACTIVE.value)


@dataclass(frozen=True)
class Rehosted:
    """What a rehost did: ``moves`` pairs each host the lease left with the host that replaced it.
    Empty: nothing was moved, and ``reason`` says why (the lease holds no host now, is not PENDING /
    ACTIVE, or holds devices of its hosts) - the caller retries where the lease is."""

    moves: tuple[tuple[HostRef, HostRef], ...] = ()
    reason: str = ""

    @property
    def left(self) -> frozenset[str]:
        """The uuids of the hosts the lease moved off."""
        return frozenset(old.uuid for old, _ in self.moves)

    def describe(self) -> str:
        return ", ".join(f"{old.name} -> {new.name}" for old, new in self.moves)


Rehost = Callable[["Connection", str, frozenset[str], int], Rehosted | None]
"""``(connection, lease uuid, hosts to avoid, now_s) -> Rehosted | None``, run inside the caller's open
transaction on ``connection``; None means some host had no alternate with capacity and nothing was
written. ``LeaseRehoster`` is the real one; tests may pass their own to the planner."""


class LeaseRehoster:
    """Moves a lease off the hosts its job failed on (see the module docstring). Callable as a planner
    ``Rehost`` hook: ``rehoster(conn, lease_uuid, avoid, now_s)``."""

    def __init__(self, claims: ClaimService, *, max_swaps: int = MAX_SWAPS) -> None:
        self.claims = claims
        self.max_swaps = max_swaps

    def __call__(
        self, conn: Connection, lease_uuid: str, avoid: frozenset[str], now_s: int
    ) -> Rehosted | None:
        with UnitOfWork(self.claims.db, connection=conn) as uow:  # a SAVEPOINT in conn's transaction
            moved = self.rehost_in(uow, lease_uuid, avoid, now_s)
            if moved is not None:
                uow.commit()
            return moved

    def rehost_in(
        self, uow: UnitOfWork, lease_uuid: str, avoid: frozenset[str], now_s: int
    ) -> Rehosted | None:
        """The move inside ``uow``; the caller commits. None (after writing nothing but failed claim
        attempts, which write nothing) when some host has no alternate with capacity."""
        lease = uow.leases.find(lease_uuid, lock=True)
        if lease is None or lease.status not in LIVE_LEASE:
            return Rehosted(reason=f"the lease is {'gone' if lease is None else lease.status}")
        rows = uow.leases.rows_from(int(lease.id), now_s)
        host_rows = [r for r in rows if r.kind == ProviderKind.HOST.value]
        if not host_rows:
            return Rehosted(reason="the lease holds no host now")
        host_ids = {int(r.pid) for r in host_rows}
        devices = sorted(
            {str(r.name) for r in rows if r.parent_id is not None and int(r.parent_id) in host_ids}
        )
        if devices:
            return Rehosted(reason=f"devices of its hosts ({', '.join(devices)}) cannot move with them")
        start, end = max(int(lease.start_s), now_s), int(lease.end_s)
        if end <= start:
            return None  # nothing left of the lease to move into
        hosts: dict[str, HostRef] = {}
        classes: dict[str, set[str]] = {}
        for r in host_rows:
            hosts.setdefault(str(r.uuid), HostRef(str(r.uuid), str(r.name)))
            classes.setdefault(str(r.uuid), set()).add(str(r.resource_class))
        exclude = set(avoid) | {str(r.uuid) for r in rows}
        queues = {h: uow.leases.alternate_hosts(h, classes[h], exclude) for h in hosts}
        spec = ConsumerSpec(
            ConsumerKind.LEASE, str(lease.project), start, end, name=f"lease {lease.id} rehost"
        )
        lease_id = int(lease.id)
        chosen = self._claim(uow, lease_id, spec, host_rows, queues, now_s)
        if chosen is None:
            return None
        old = [int(r.id) for r in host_rows]
        if lease.status == ConsumerStatus.PENDING.value:  # nothing of it has happened (even if late)
            uow.leases.drop_rows(old)
        else:
            uow.leases.end_rows_at(old, now_s)
        uow.leases.bump_generation(lease_id)
        repoint_placement(uow, lease_id, {h: chosen[h].uuid for h in hosts})
        return Rehosted(tuple((hosts[h], chosen[h]) for h in hosts))

    def _claim(
        self,
        uow: UnitOfWork,
        lease_id: int,
        spec: ConsumerSpec,
        host_rows: Sequence[Any],
        queues: dict[str, list[HostRef]],
        now_s: int,
    ) -> dict[str, HostRef] | None:
        """Claim each old host's items on one alternate of its own (distinct hosts: a lease that held
        two hosts still holds two) for the lease (``claim_for_lease``). On a conflict the swap rule of
        ``alternates`` decides: the first conflicting host gives way to its next untried stand-in, and
        the move ends when a conflict names nothing a stand-in could fix. Returns the choice, or None."""
        refs = {alt.uuid: alt for queue in queues.values() for alt in queue}
        slots = [str(r.uuid) for r in host_rows]  # the old host each item stands in for
        chosen: dict[str, HostRef] = {}
        tried: set[str] = set()

        def place(host: str) -> bool:
            in_use = {alt.uuid for alt in chosen.values()}
            alt = next_alternate((a.uuid for a in queues[host]), tried, in_use)
            if alt is None:
                return False
            chosen[host] = refs[alt]
            return True

        if not all(place(h) for h in queues):
            return None
        for _ in range(self.max_swaps + 1):
            items = tuple(
                ClaimItem(chosen[str(r.uuid)].uuid, str(r.resource_class), int(r.amount), r.vlan_tag)
                for r in host_rows
            )
            try:
                claim_for_lease(self.claims, uow, lease_id, spec, items, now_s)
            except (CapacityConflict, ValidationFailed) as exc:
                stuck = conflicting_owner(exc.errors, slots)
                if stuck is None or not place(stuck):
                    return None
                continue
            return chosen
        return None


__all__ = ["LeaseRehoster", "Rehost", "Rehosted"]
