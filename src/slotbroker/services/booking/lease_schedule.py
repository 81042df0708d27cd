"""The events a lease fires: start, before_end (a notice ahead of the end) and end.

Written in the same transaction that creates or changes the lease, so an event can never be lost or
duplicated; the lease service's scheduler loop fires due events exactly once (``LeaseEventRow``).
"""

from __future__ import annotations

from slotbroker.store.unit_of_work import UnitOfWork

KINDS = ("start", "before_end", "end")


def event_times(start_s: int, end_s: int, notice_s: int) -> dict[str, int]:
    """When each event is due; the notice never comes before the start."""
    return {"start": start_s, "before_end": max(start_s, end_s - notice_s), "end": end_s}


def schedule_lease_events(uow: UnitOfWork, consumer_id: int, start_s: int, end_s: int, notice_s: int) -> None:
    """(Re)schedule a lease's events; events already fired stay as they are."""
    uow.leases.reschedule_events(consumer_id, event_times(start_s, end_s, notice_s))


def schedule_new_lease_events(
    uow: UnitOfWork, consumer_id: int, start_s: int, end_s: int, notice_s: int
) -> None:
    """The events of a lease created in this transaction: nothing to read back or keep, one insert."""
    uow.leases.add_events(consumer_id, event_times(start_s, end_s, notice_s))


def cancel_lease_events(uow: UnitOfWork, consumer_id: int) -> None:
    """Drop the events not yet fired (a cancelled lease fires nothing more)."""
    uow.leases.drop_unfired_events(consumer_id)
