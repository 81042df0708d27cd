"""The allocation a job provisions: what its lease holds now, read once per chain of steps.

Every attempt provisions the lease's *current* allocation: after a retry moved the lease
(``services.lease_rehost``) that is the alternate, and a row the move cut short stays on record for the
past but is never provisioned again (only rows that have not ended are read). The worker reads it with
the claim and its task reuses it for the steps it chains (milliseconds apart); a new attempt forgets it.
"""

from __future__ import annotations

import contextvars
import dataclasses
from dataclasses import dataclass

from slotbroker.domain.providers import ProviderKind
from slotbroker.services.planner.provisioners.base import Allocation, AllocationItem
from slotbroker.store.repositories.job_rows import JobSnapshot
from slotbroker.store.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class LeaseAllocation:
    """A lease's status and what it holds now. ``hosts``: the names of its host providers."""

    lease_status: str | None
    allocation: Allocation | None
    hosts: tuple[str, ...] = ()

    def for_job(self, job: JobSnapshot) -> Allocation | None:
        """The allocation, labelled as an alternate once the job has moved the lease (for its log)."""
        if self.allocation is None or not job.tried_hosts:
            return self.allocation
        return dataclasses.replace(self.allocation, label=f"alternate: {', '.join(self.hosts)}")


def load_lease(uow: UnitOfWork, lease_uuid: str, now_s: int) -> LeaseAllocation:
    """The lease and the rows it holds that have not ended at ``now_s``."""
    lease = uow.jobs.lease(lease_uuid)
    if lease is None:
        return LeaseAllocation(None, None)
    rows = uow.jobs.lease_items(lease.id, now_s)
    items = tuple(AllocationItem(name, rc, amount, tag) for name, rc, amount, tag, _kind, _at in rows)
    booked = {name: attrs for name, _rc, _a, _t, kind, attrs in rows if kind == ProviderKind.HOST.value}
    hosts = tuple(booked)
    allocation = Allocation(
        lease_uuid,
        str(lease.project),
        int(lease.start_s),
        int(lease.end_s),
        items,
        hosts=hosts,
        host_attributes=booked,
    )
    return LeaseAllocation(str(lease.status), allocation, hosts)


_memo: contextvars.ContextVar[dict[str, LeaseAllocation] | None] = contextvars.ContextVar(
    "planner_memo", default=None
)


def remember_allocations(found: LeaseAllocation | None = None, lease_uuid: str = "") -> None:
    """Within the calling task, reuse a lease's allocation (read with the claim, or by a step) in the
    steps chained after it: the worker's task runs one job's chained steps, milliseconds apart."""
    _memo.set({lease_uuid: found} if found is not None else {})


def remembered(lease_uuid: str) -> LeaseAllocation | None:
    memo = _memo.get()
    return None if memo is None else memo.get(lease_uuid)


def keep_allocation(lease_uuid: str, found: LeaseAllocation) -> None:
    """Remember ``found`` if this task remembers allocations (one lease at a time: bounded)."""
    memo = _memo.get()
    if memo is not None:
        memo.clear()
        memo[lease_uuid] = found


def forget_allocations() -> None:
    """A new attempt: its retry may have moved the lease, so the next step reads it again."""
    memo = _memo.get()
    if memo is not None:
        memo.clear()


__all__ = [
    "LeaseAllocation",
    "forget_allocations",
    "keep_allocation",
    "load_lease",
    "remember_allocations",
    "remembered",
]
