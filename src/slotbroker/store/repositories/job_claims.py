"""Claiming planner steps: due steps in queue order, unattended ones for reconciliation, heartbeats.

Claiming is the only contended write. PostgreSQL: the candidate rows are locked with
``FOR UPDATE SKIP LOCKED`` so any number of workers (embedded pools, procrastinate workers, replicas)
claim disjoint steps without waiting on each other. SQLite: the write transaction starts with
``BEGIN IMMEDIATE`` (``store.db``), which makes the claimer the only writer; the re-check of the claim
predicate in the UPDATE does the rest. A claim is a lease on the step (``claimed_until_ms``), renewed by
the worker's heartbeat; ``version`` is the claim token a commit must present.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from slotbroker.domain.jobs import JobState, Step
from slotbroker.store import tables
from slotbroker.store.repositories.job_logs import JobLogRepository
from slotbroker.store.repositories.job_rows import ACTIVE_STATES, JobSnapshot, claimable, replace

jobs = tables.jobs


class JobClaimRepository:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.logs = JobLogRepository(session)

    @property
    def connection(self) -> Connection:
        return self.session.connection()

    def _postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    def active_by_provisioner(self, now_ms: int) -> dict[str, int]:
        """Jobs holding (or about to hold) a provision, per provisioner."""
        busy = or_(
            jobs.c.state.in_(ACTIVE_STATES),
            and_(jobs.c.state == JobState.PENDING.value, jobs.c.claimed_until_ms >= now_ms),
        )
        rows = self.connection.execute(
            select(jobs.c.provisioner, func.count())
            .where(jobs.c.step.is_not(None), busy)
            .group_by(jobs.c.provisioner)
        ).all()
        return {str(p): int(n) for p, n in rows}

    def due(
        self,
        *,
        ranked: Select[int],
        now_ms: int,
        worker: str,
        until_ms: int,
        limit: int,
        max_active: dict[str, int],
    ) -> list[JobSnapshot]:
        """Claim up to ``limit`` due steps in the order ``ranked`` gives (a ``SELECT seq`` of claimable jobs,
        already ordered and limited by the queue policy, ``job_queues``). A pending job whose provisioner
        is at its ``max_active`` is skipped (the jobs behind it, of other provisioners, go ahead). The claim
        moves a pending job to ``provisioning`` (recorded) unless a cancel or expiry is already requested.
        """
        conn = self.connection
        order = [int(row[0]) for row in conn.execute(ranked).all()]
        if not order:
            return []
        lock = select(jobs).where(jobs.c.seq.in_(order), claimable(now_ms))
        if self._postgres():
            lock = lock.with_for_update(skip_locked=True)
        rows = {int(r.seq): JobSnapshot.of(r) for r in conn.execute(lock)}
        room: dict[str, int] = {}
        if max_active:
            active = self.active_by_provisioner(now_ms)
            room = {p: cap - active.get(p, 0) for p, cap in max_active.items()}
        chosen: list[JobSnapshot] = []
        for seq in order:
            job = rows.get(seq)
            if job is None:
                continue
            if job.state == JobState.PENDING.value and job.provisioner in room:
                if room[job.provisioner] <= 0:
                    continue
                room[job.provisioner] -= 1
            chosen.append(job)
            if len(chosen) >= limit:
                break
        if not chosen:
            return []
        # One UPDATE for the batch: the rows are locked (PostgreSQL) or we are the only writer (SQLite).
        starting = [
            j
            for j in chosen
            if j.step == Step.PROVISION.value and not j.cancel_requested and not j.expire_requested
        ]
        entering = [j for j in starting if j.state == JobState.PENDING.value]
        values: dict[str, Any] = {
            "claimed_by": worker,
            "claimed_until_ms": until_ms,
            "version": jobs.c.version + 1,
            "updated_ms": now_ms,
        }
        if starting:
            ids = [j.seq for j in starting]
            values["provision_started_ms"] = case(
                (jobs.c.seq.in_(ids), now_ms), else_=jobs.c.provision_started_ms
            )
        if entering:
            ids = [j.seq for j in entering]
            values["state"] = case((jobs.c.seq.in_(ids), JobState.PROVISIONING.value), else_=jobs.c.state)
            self.logs.add_transitions(
                [(j.seq, j.state, JobState.PROVISIONING.value, now_ms, "") for j in entering]
            )
        conn.execute(update(jobs).where(jobs.c.seq.in_([j.seq for j in chosen])).values(**values))
        started = {j.seq for j in starting}
        out: list[JobSnapshot] = []
        for job in chosen:
            changed: dict[str, Any] = {
                "claimed_by": worker,
                "claimed_until_ms": until_ms,
                "version": job.version + 1,
                "updated_ms": now_ms,
            }
            if job.seq in started:
                changed["provision_started_ms"] = now_ms
                if job.state == JobState.PENDING.value:
                    changed["state"] = JobState.PROVISIONING.value
            out.append(replace(job, changed))
        return out

    def unattended(
        self,
        *,
        now_ms: int,
        worker: str,
        until_ms: int,
        limit: int,
        takeover: bool,
        after_seq: int = 0,
        provisioners: Sequence[str] | None = None,
    ) -> list[JobSnapshot]:
        """Claim jobs under way (provisioning, submitted, running) that no live worker holds - every one of
        them with ``takeover`` (the only worker on this database, just restarted) - for reconciliation."""
        stmt = (
            select(jobs)
            .where(jobs.c.step.is_not(None), jobs.c.state.in_(ACTIVE_STATES), jobs.c.seq > after_seq)
            .order_by(jobs.c.seq)
            .limit(limit)
        )
        if not takeover:
            stmt = stmt.where(or_(jobs.c.claimed_until_ms.is_(None), jobs.c.claimed_until_ms < now_ms))
        if provisioners is not None:
            stmt = stmt.where(jobs.c.provisioner.in_(list(provisioners)))
        if self._postgres():  # taking over: wait for a dying worker's last transaction instead of skipping
            stmt = stmt.with_for_update(skip_locked=not takeover)
        conn = self.connection
        out: list[JobSnapshot] = []
        for row in conn.execute(stmt):
            job = JobSnapshot.of(row)
            values = {"claimed_by": worker, "claimed_until_ms": until_ms, "version": job.version + 1}
            conn.execute(update(jobs).where(jobs.c.seq == job.seq).values(**values))
            out.append(replace(job, values))
        return out

    def next_due_ms(self) -> int | None:
        """When the earliest unclaimed step becomes due (an idle pool sleeps until then)."""
        value = self.connection.execute(
            select(func.min(jobs.c.due_ms)).where(jobs.c.step.is_not(None), jobs.c.claimed_by.is_(None))
        ).scalar()
        return None if value is None else int(value)

    def overdue(self, before_ms: int, limit: int) -> list[tuple[str, int]]:
        """(id, due_ms) of steps due before ``before_ms`` and unclaimed (or their claim ran out by then),
        earliest first: wake-ups an external queue may have lost."""
        rows = self.connection.execute(
            select(jobs.c.id, jobs.c.due_ms)
            .where(
                and_(
                    jobs.c.step.is_not(None),
                    jobs.c.due_ms <= before_ms,
                    or_(jobs.c.claimed_until_ms.is_(None), jobs.c.claimed_until_ms < before_ms),
                )
            )
            .order_by(jobs.c.due_ms)
            .limit(limit)
        ).all()
        return [(str(job_id), int(due)) for job_id, due in rows]

    def renew(self, worker: str, until_ms: int) -> int:
        """Heartbeat: extend every claim ``worker`` holds."""
        result = self.connection.execute(
            update(jobs)
            .where(jobs.c.claimed_by == worker, jobs.c.step.is_not(None))
            .values(claimed_until_ms=until_ms)
        )
        return int(result.rowcount)

    def release(self, worker: str) -> int:
        """Give back every claim ``worker`` holds (a clean shutdown: others may take the steps at once)."""
        result = self.connection.execute(
            update(jobs)
            .where(jobs.c.claimed_by == worker)
            .values(claimed_by=None, claimed_until_ms=None, version=jobs.c.version + 1)
        )
        return int(result.rowcount)
