"""End a lease now because its work is done: the rest of its booking goes back to the calendar.

Why not ``cancel``: cancelling frees *every* allocation of the lease, its past too, so the calendar and
the audit would forget that the work ran. Ending early keeps the past on record exactly as the lease's own
``end`` event does (``ClaimService.release_in`` with ENDED: rows not yet started are deleted, running rows
are cut at now), records the ``end`` transition with its hooks, and moves the lease's end to now.
Trace replay uses it when a job's real runtime is shorter than the time its user asked for.
"""

from __future__ import annotations

from slotbroker.domain.claims import ConsumerStatus
from slotbroker.domain.errors import ConcurrentUpdate, NotFound
from slotbroker.services.booking.lease_events import record_transition
from slotbroker.services.booking.lease_schedule import cancel_lease_events
from slotbroker.services.booking.leases import LeaseService
from slotbroker.services.retry import retrying
from slotbroker.store.unit_of_work import UnitOfWork


def end_now(leases: LeaseService, lease_id: str, *, now_s: int, project: str | None = None) -> None:
    """End the ACTIVE lease ``lease_id`` at ``now_s`` (before its booked end). A lease already at or
    past its end is left to its end event. Raises ``NotFound`` or ``ConcurrentUpdate``
    (``invalid_state``: the lease is not ACTIVE)."""

    def attempt() -> None:
        with UnitOfWork(leases.db) as uow:
            row = uow.leases.lock_head(lease_id)
            if row is None or (project is not None and row.project != project):
                raise NotFound(f"no lease {lease_id}")
            if row.status != ConsumerStatus.ACTIVE.value:
                raise ConcurrentUpdate(
                    f"lease {lease_id} is {row.status}; only an ACTIVE lease ends early", code="invalid_state"
                )
            if now_s >= int(row.end_s):
                return
            consumer_id = int(row.id)
            cancel_lease_events(uow, consumer_id)
            uow.leases.set_times(consumer_id, int(row.generation), int(row.start_s), now_s)  # row is locked
            leases.claims.release_in(
                uow, lease_id, status=ConsumerStatus.ENDED, now_s=now_s, consumer_id=consumer_id
            )
            record_transition(uow, leases.hooks, consumer_id, lease_id, row.project, "end", now_s)
            uow.commit()

    retrying(lambda _n: attempt(), leases.max_attempts)


__all__ = ["end_now"]
