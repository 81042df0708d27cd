"""Planner jobs: insert once by id, read, commit a step, the job's lease, keyset listing, purge.

``JobRepository`` runs Core statements on the unit of work's connection (no ORM objects: the planner's
hot path), so a step commit, the lease move it makes and an external queue's enqueue share one
transaction. Claiming is ``uow.jobs.claims`` (``job_claims``), history ``uow.jobs.logs`` (``job_logs``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    CursorResult,
    bindparam,
    delete,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from slotbroker.domain.claims import ConsumerKind
from slotbroker.store import tables
from slotbroker.store.prebuilt import fixed, run_rows
from slotbroker.store.repositories.job_claims import JobClaimRepository
from slotbroker.store.repositories.job_logs import JobLogRepository
from slotbroker.store.repositories.job_rows import (
    STEP_COLUMNS,
    TERMINAL_STATES,
    JobSnapshot,
    replace,
)

jobs = tables.jobs
consumers = tables.consumers

_JOB_INSERT = {
    "postgresql": pg_insert(jobs).on_conflict_do_nothing(index_elements=["id"]).returning(jobs.c.seq),
    "sqlite": sqlite_insert(jobs).on_conflict_do_nothing(index_elements=["id"]).returning(jobs.c.seq),
}
_LOCK_LEASE = (
    select(consumers.c.id)
    .where(consumers.c.uuid == bindparam("lease_uuid"), consumers.c.kind == ConsumerKind.LEASE.value)
    .with_for_update()
)
# FOR SHARE (PostgreSQL): a job is created either before a retry of a sibling moves the lease (which
# then sees it) or after (it reads the moved allocation), never in between (``step_commit._move``).
_LEASE_FOR_NEW_JOB = (
    select(consumers.c.project, consumers.c.status, consumers.c.start_s)
    .where(consumers.c.uuid == bindparam("lease_uuid"), consumers.c.kind == ConsumerKind.LEASE.value)
    .with_for_update(read=True)
)
_LEASE = select(
    consumers.c.id, consumers.c.project, consumers.c.status, consumers.c.start_s, consumers.c.end_s
).where(consumers.c.uuid == bindparam("lease_uuid"), consumers.c.kind == ConsumerKind.LEASE.value)
LeaseItem = tuple[str, str, int, int | None, str, dict[str, str]]
_LEASE_ITEMS = (
    select(
        tables.providers.c.name,
        tables.allocations.c.resource_class,
        tables.allocations.c.amount,
        tables.allocations.c.vlan_tag,
        tables.providers.c.kind,
        tables.providers.c.attributes,
    )
    .join(tables.providers, tables.providers.c.id == tables.allocations.c.provider_id)
    .where(
        tables.allocations.c.consumer_id == bindparam("consumer_id"),
        tables.allocations.c.end_s > bindparam("now_s"),
    )
    .order_by(tables.allocations.c.id)
)

# Built once: the hot path's UPDATE, always the same shape (all step columns, from the new snapshot).
_WRITE_CLAIMED = (
    update(jobs)
    .where(
        jobs.c.seq == bindparam("b_seq"),
        jobs.c.version == bindparam("b_version"),
        jobs.c.claimed_by == bindparam("b_worker"),
        jobs.c.cancel_requested.is_(False),
        jobs.c.expire_requested.is_(False),
    )
    .values({name: bindparam(name) for name in STEP_COLUMNS})
)


# every lease event's planner hook asks it: built once
_LIVE_OF_LEASE = (
    select(jobs)
    .where(jobs.c.lease_uuid == bindparam("lease_uuid"), jobs.c.step.is_not(None))
    .order_by(jobs.c.seq)
)
_LIVE_OF_LEASE_LOCKED = _LIVE_OF_LEASE.with_for_update()
# every lease event asks (the planner's hook): compiled once, run on the cursor (store/prebuilt.py)
_live_of_lease, _live_of_lease_locked = fixed(_LIVE_OF_LEASE), fixed(_LIVE_OF_LEASE_LOCKED)


class JobRepository:
    """The jobs table, on the unit of work's connection (``connection`` is taken on first use)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.logs = JobLogRepository(session)
        self.claims = JobClaimRepository(session)

    @property
    def connection(self) -> Connection:
        """The unit of work's connection, inside its transaction (a nested ``UnitOfWork(connection=...)``
        joins it as a savepoint)."""
        return self.session.connection()

    def driver_connection(self) -> Any:
        """The DB-API connection under it (same transaction): an external queue defers its task on it."""
        return self.connection.connection.driver_connection

    def table_exists(self, name: str) -> bool:
        """Whether PostgreSQL knows table ``name`` (an external queue's schema, applied or not)."""
        found = self.connection.execute(
            text("SELECT to_regclass(:name) IS NOT NULL"), {"name": name}
        ).scalar()
        return bool(found)

    def _postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    def _write(self, stmt: Any, params: dict[str, Any] | None = None) -> CursorResult[Any]:
        """Run an UPDATE / DELETE (its result has a ``rowcount``)."""
        return self.connection.execute(stmt, params)

    # -- one job -------------------------------------------------------------------------------------------
    def insert(self, values: dict[str, Any]) -> int | None:
        """Insert a job unless one with the same id exists (then None: the id is the idempotency key).
        A concurrent insert of the same id may also surface as an IntegrityError (SQLite): None too."""
        conn = self.connection
        try:
            seq = conn.execute(_JOB_INSERT[conn.dialect.name], values).scalar_one_or_none()
        except IntegrityError:
            return None
        return None if seq is None else int(seq)

    def get(self, job_id: str, *, lock: bool = False) -> JobSnapshot | None:
        stmt = select(jobs).where(jobs.c.id == job_id)
        if lock:
            stmt = stmt.with_for_update()
        row = self.connection.execute(stmt).first()
        return None if row is None else JobSnapshot.of(row)

    def get_by_seq(self, seq: int, *, lock: bool = False) -> JobSnapshot | None:
        stmt = select(jobs).where(jobs.c.seq == seq)
        if lock:
            stmt = stmt.with_for_update()
        row = self.connection.execute(stmt).first()
        return None if row is None else JobSnapshot.of(row)

    def lock_for_commit(self, seq: int, version: int, worker: str) -> JobSnapshot | None:
        """The job, locked, if ``worker`` still holds the claim ``version``; else None (claim lost)."""
        job = self.get_by_seq(seq, lock=True)
        if job is None or job.version != version or job.claimed_by != worker:
            return None
        return job

    def write_claimed(self, job: JobSnapshot, worker: str, values: dict[str, Any]) -> JobSnapshot | None:
        """Apply ``values`` if ``worker`` still holds claim ``job.version`` and no cancel or expiry has been
        requested - checked by the UPDATE itself, atomically. None if not (the caller takes the slow path)."""
        new = replace(job, {**values, "version": job.version + 1})
        params = {name: getattr(new, name) for name in STEP_COLUMNS}
        params.update(b_seq=job.seq, b_version=job.version, b_worker=worker)
        done = self._write(_WRITE_CLAIMED, params)
        return new if done.rowcount == 1 else None

    def write(self, job: JobSnapshot, values: dict[str, Any]) -> JobSnapshot:
        """Apply ``values`` to a locked job and bump its version; returns the new snapshot."""
        values = {**values, "version": job.version + 1}
        self.connection.execute(update(jobs).where(jobs.c.seq == job.seq).values(**values))
        return replace(job, values)

    def request_stop(self, seq: int, flag: str, due_ms: int, now_ms: int) -> None:
        """Set a job's ``cancel_requested`` / ``expire_requested`` flag and make its step due by ``due_ms``
        (its version unchanged: the worker holding the claim sees the flag at its commit)."""
        self.connection.execute(
            update(jobs).where(jobs.c.seq == seq).values({flag: True, "due_ms": due_ms, "updated_ms": now_ms})
        )

    # -- claiming ------------------------------------------------------------------------------------------
    # -- the job's lease -----------------------------------------------------------------------------------
    def lock_lease(self, lease_uuid: str) -> None:
        """Lock a lease's consumer row (PostgreSQL; on SQLite ``BEGIN IMMEDIATE`` already excludes every
        other writer). A commit that may move its lease takes this lock *before* the job row: the lease's
        writers (update, cancel, the event loop, whose hooks then lock the lease's jobs) all lock the lease
        first, so they and the commit queue on that one row instead of waiting on each other in a cycle."""
        self.connection.execute(_LOCK_LEASE, {"lease_uuid": lease_uuid}).first()

    def lease_for_new_job(self, lease_uuid: str) -> Any:
        """(project, status, start_s) of a lease, share-locked (PostgreSQL) until the job is written, or
        None."""
        return self.connection.execute(_LEASE_FOR_NEW_JOB, {"lease_uuid": lease_uuid}).first()

    def lease(self, lease_uuid: str) -> Any:
        """(id, project, status, start_s, end_s) of a lease, or None."""
        return self.connection.execute(_LEASE, {"lease_uuid": lease_uuid}).first()

    def lease_items(self, consumer_id: int, now_s: int) -> list[LeaseItem]:
        """(provider name, class, amount, VLAN tag, provider kind, provider attributes) of the lease's rows
        not ended at ``now_s``, in allocation order."""
        rows = self.connection.execute(_LEASE_ITEMS, {"consumer_id": consumer_id, "now_s": now_s}).all()
        return [(str(r[0]), str(r[1]), int(r[2]), r[3], str(r[4]), dict(r[5] or {})) for r in rows]

    def others_under_way(self, lease_uuid: str, seq: int, now_ms: int) -> list[str]:
        """Ids of the lease's other jobs that use its allocation now: claimed by a worker (which may be
        calling ``provision`` with what it read) or holding a provision not yet released. The rows are
        locked (PostgreSQL), so a claim being made right now is waited for and seen, and a job claimed
        after this transaction reads the allocation it leaves behind."""
        stmt = (
            select(
                jobs.c.id,
                jobs.c.claimed_until_ms,
                jobs.c.provision_id,
                jobs.c.released_attempt,
                jobs.c.attempt,
            )
            .where(jobs.c.lease_uuid == lease_uuid, jobs.c.seq != seq, jobs.c.step.is_not(None))
            .order_by(jobs.c.seq)
        )
        if self._postgres():
            stmt = stmt.with_for_update()
        return [
            str(r.id)
            for r in self.connection.execute(stmt)
            if (r.claimed_until_ms is not None and r.claimed_until_ms >= now_ms)
            or (r.provision_id is not None and r.released_attempt < r.attempt)
        ]

    def live_of_lease(self, lease_uuid: str) -> list[JobSnapshot]:
        """The lease's unfinished jobs, locked (PostgreSQL)."""
        build = _live_of_lease_locked if self._postgres() else _live_of_lease
        return [JobSnapshot.of(r) for r in run_rows(self.connection, build, 0, {"lease_uuid": lease_uuid})]

    def make_due(self, lease_uuid: str, now_ms: int) -> None:
        """The lease started: its jobs' steps waiting for a later time are due now."""
        self.connection.execute(
            update(jobs)
            .where(jobs.c.lease_uuid == lease_uuid, jobs.c.step.is_not(None), jobs.c.due_ms > now_ms)
            .values(due_ms=now_ms)
        )

    # -- listing and retention -----------------------------------------------------------------------------
    def list(
        self,
        *,
        limit: int,
        after: int | None = None,
        states: Sequence[str] | None = None,
        project: str | None = None,
        lease_uuid: str | None = None,
    ) -> list[JobSnapshot]:
        """Newest first, keyset on ``seq``: a page never repeats or skips a job when others are added."""
        stmt = select(jobs).order_by(jobs.c.seq.desc()).limit(limit)
        if after is not None:
            stmt = stmt.where(jobs.c.seq < after)
        if states:
            stmt = stmt.where(jobs.c.state.in_(list(states)))
        if project is not None:
            stmt = stmt.where(jobs.c.project == project)
        if lease_uuid is not None:
            stmt = stmt.where(jobs.c.lease_uuid == lease_uuid)
        return [JobSnapshot.of(r) for r in self.connection.execute(stmt)]

    def purge_terminal(self, before_ms: int, limit: int = 1000) -> int:
        """Delete up to ``limit`` terminal jobs finished before ``before_ms``, with their transitions and
        logs."""
        seqs = [
            int(s)
            for s in self.connection.execute(
                select(jobs.c.seq)
                .where(
                    jobs.c.step.is_(None), jobs.c.finished_ms < before_ms, jobs.c.state.in_(TERMINAL_STATES)
                )
                .order_by(jobs.c.finished_ms)
                .limit(limit)
            ).scalars()
        ]
        if not seqs:
            return 0
        self.logs.delete_of(seqs)
        return int(self._write(delete(jobs).where(jobs.c.seq.in_(seqs))).rowcount)


__all__ = ["JobRepository"]
