"""Cancelling a lease that still has work in it: refused (409 ``jobs_running``, naming the jobs) unless
the caller says ``force``. Cancelling releases the capacity at once and the planner then tears the
lease's jobs down, so a stray ``lease cancel`` would kill a run that took hours to get to; the refusal
names what would be lost, and ``force`` is one flag away. A lease already over (cancelled, ended)
cancels as before (idempotent), whatever its jobs are doing."""

from __future__ import annotations

from slotbroker.domain.errors import InUse
from slotbroker.domain.jobs import TERMINAL, JobState
from slotbroker.services.leases import LeaseService
from slotbroker.services.planner import Planner
from slotbroker.wire.leases import LeaseView

UNFINISHED = [s.value for s in JobState if s not in TERMINAL]
SHOWN = 50  # jobs named in the refusal


class LeaseCanceller:
    def __init__(self, leases: LeaseService, planner: Planner) -> None:
        self.leases = leases
        self.planner = planner

    def cancel(self, lease_id: str, *, project: str | None, force: bool = False) -> LeaseView:
        """``LeaseService.cancel``, refused with ``InUse`` (code ``jobs_running``) while the lease is
        live and has unfinished jobs, unless ``force``."""
        if not force:
            view = self.leases.get(lease_id, project=project)
            if view.status not in ("CANCELLED", "ENDED"):
                jobs = self.planner.list(lease_id=lease_id, states=UNFINISHED, limit=SHOWN).items
                if jobs:
                    ids = [j.id for j in jobs]
                    more = " and more" if len(ids) == SHOWN else ""
                    raise InUse(
                        f"lease {lease_id} has unfinished jobs ({', '.join(ids)}{more}); cancelling it "
                        "stops them - cancel with force=true to do so",
                        code="jobs_running",
                        extensions={"running_jobs": ids},
                    )
        return self.leases.cancel(lease_id, project=project)


__all__ = ["LeaseCanceller"]
