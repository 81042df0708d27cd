"""Find-slot jobs: long searches run in the background, whose state any replica can read and, when the
process running one died, take over."""

from __future__ import annotations

from sqlalchemy import delete, or_, update
from sqlalchemy.orm import Session

from slotbroker.store import tables
from slotbroker.store.models import FindSlotJobRow


class FindSlotJobRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def purge_expired(self, now_s: int) -> None:
        self.session.execute(delete(FindSlotJobRow).where(FindSlotJobRow.expires_s < now_s))

    def add(self, row: FindSlotJobRow) -> None:
        self.session.add(row)

    def get(self, job_id: str) -> FindSlotJobRow | None:
        return self.session.get(FindSlotJobRow, job_id)

    def detached(self, job_id: str) -> FindSlotJobRow | None:
        """A loaded, detached copy: leaving the unit of work expires nothing on it."""
        row = self.session.get(FindSlotJobRow, job_id)
        if row is not None:
            self.session.expunge(row)
        return row

    def take_over(self, job_id: str, *, now_s: int, runner_until_s: int, max_runs: int) -> bool:
        """Claim an unfinished job whose runner's claim ran out, if it has runs left: one guarded UPDATE,
        so of several replicas trying at once exactly one wins."""
        job = tables.find_slot_jobs
        done = self.session.execute(
            update(job)
            .where(
                job.c.id == job_id,
                job.c.status.in_(("pending", "running")),
                or_(job.c.runner_until_s.is_(None), job.c.runner_until_s < now_s),
                job.c.runs < max_runs,
            )
            .values(status="pending", runner_until_s=runner_until_s, runs=job.c.runs + 1)
        )
        return getattr(done, "rowcount", 0) == 1
