"""Planner jobs: insert once by id, claim due steps, commit a step, keyset listing, purge.

Claiming is the only contended write. PostgreSQL: the candidate rows are locked with
``FOR UPDATE SKIP LOCKED`` so any number of workers (embedded pools, procrastinate workers, replicas)
claim disjoint steps without waiting on each other. SQLite: the write transaction starts with
``BEGIN IMMEDIATE`` (``store.db``), which makes the claimer the only writer; the re-check of the claim
predicate in the UPDATE does the rest. A claim is a lease on the step (``claimed_until_ms``), renewed by
the worker's heartbeat; ``version`` is the claim token a commit must present.

``JobRepository`` runs Core statements on the unit of work's connection (no ORM objects: the planner's
hot path), so a step commit, the lease move it makes and an external queue's enqueue share one
transaction. Transitions and logs are ``job_logs.JobLogRepository``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import (
    CursorResult,
    Select,
    and_,
    bindparam,
    case,
    delete,
    func,
    or_,
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
from slotbroker.domain.errors import FieldError, ValidationFailed
from slotbroker.domain.jobs import TERMINAL, JobState, Step
from slotbroker.store import tables
from slotbroker.store.repositories.job_logs import JobLogRepository

jobs = tables.jobs
consumers = tables.consumers

ACTIVE_STATES = (JobState.PROVISIONING.value, JobState.SUBMITTED.value, JobState.RUNNING.value)
TERMINAL_STATES = tuple(s.value for s in TERMINAL)


@dataclass(frozen=True)
class JobSnapshot:
    """A job row as read (immutable; commits go through ``commit_step``)."""

    seq: int
    id: str
    name: str
    project: str
    lease_uuid: str
    provisioner: str
    priority: int
    workload: str
    state: str
    step: str | None
    due_ms: int
    claimed_by: str | None
    claimed_until_ms: int | None
    version: int
    cancel_requested: bool
    expire_requested: bool
    reason: str | None
    attempt: int
    provision_id: str | None
    provision_started_ms: int | None
    released_attempt: int
    releases: int
    run_id: str | None
    run_stopped: bool
    exit_code: int | None
    error: str | None
    created_ms: int
    updated_ms: int
    finished_ms: int | None
    tried_hosts: str | None  # JSON list of host uuids (``hosts_of`` / ``hosts_json``)

    @classmethod
    def of(cls, row: Any) -> JobSnapshot:
        m = row._mapping
        return cls(**{f.name: m[f.name] for f in fields(cls)})

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES


def hosts_of(job: JobSnapshot) -> frozenset[str]:
    """The hosts (uuids) the job's failed attempts ran on."""
    return frozenset(json.loads(job.tried_hosts)) if job.tried_hosts else frozenset()


def hosts_json(hosts: Iterable[str]) -> str:
    return json.dumps(sorted(set(hosts)))


def replace(job: JobSnapshot, values: dict[str, Any]) -> JobSnapshot:
    data = {f.name: getattr(job, f.name) for f in fields(JobSnapshot)}
    data.update({k: v for k, v in values.items() if k in data})
    return JobSnapshot(**data)


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"j{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("j"):
            raise ValueError(raw)
        return int(raw[1:])
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ValidationFailed(
            "invalid cursor", [FieldError("#/query/cursor", "not a cursor we issued")]
        ) from exc


def claimable(now_ms: int, provisioners: Sequence[str] | None = None) -> Any:
    """Due, unclaimed (or claim run out) steps - of ``provisioners`` only, if given: a worker never
    takes a job whose provisioner it does not have (a fleet may run plugins on some workers only)."""
    cond = and_(
        jobs.c.step.is_not(None),
        jobs.c.due_ms <= now_ms,
        or_(jobs.c.claimed_until_ms.is_(None), jobs.c.claimed_until_ms < now_ms),
    )
    return cond if provisioners is None else and_(cond, jobs.c.provisioner.in_(list(provisioners)))


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
# then sees it) or after (it reads the moved allocation), never in between (``steps._move``).
_LEASE_FOR_NEW_JOB = (
    select(consumers.c.project, consumers.c.status, consumers.c.start_s)
    .where(consumers.c.uuid == bindparam("lease_uuid"), consumers.c.kind == ConsumerKind.LEASE.value)
    .with_for_update(read=True)
)
_LEASE = select(
    consumers.c.id, consumers.c.project, consumers.c.status, consumers.c.start_s, consumers.c.end_s
).where(consumers.c.uuid == bindparam("lease_uuid"), consumers.c.kind == ConsumerKind.LEASE.value)
_LEASE_ITEMS = (
    select(
        tables.providers.c.name,
        tables.allocations.c.resource_class,
        tables.allocations.c.amount,
        tables.allocations.c.vlan_tag,
        tables.providers.c.kind,
    )
    .join(tables.providers, tables.providers.c.id == tables.allocations.c.provider_id)
    .where(
        tables.allocations.c.consumer_id == bindparam("consumer_id"),
        tables.allocations.c.end_s > bindparam("now_s"),
    )
    .order_by(tables.allocations.c.id)
)

# Columns a step may change (``cancel_requested`` and ``provision_started_ms`` are not among them).
STEP_COLUMNS = (
    "state",
    "step",
    "due_ms",
    "claimed_by",
    "claimed_until_ms",
    "version",
    "reason",
    "attempt",
    "provision_id",
    "released_attempt",
    "releases",
    "run_id",
    "run_stopped",
    "exit_code",
    "error",
    "expire_requested",
    "updated_ms",
    "finished_ms",
    "tried_hosts",
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


class JobRepository:
    """The jobs table, on the unit of work's connection (``connection`` is taken on first use)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.logs = JobLogRepository(session)

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

    def claim_due(
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

    def claim_unattended(
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

    def renew_claims(self, worker: str, until_ms: int) -> int:
        """Heartbeat: extend every claim ``worker`` holds."""
        result = self._write(
            update(jobs)
            .where(jobs.c.claimed_by == worker, jobs.c.step.is_not(None))
            .values(claimed_until_ms=until_ms)
        )
        return int(result.rowcount)

    def release_claims(self, worker: str) -> int:
        """Give back every claim ``worker`` holds (a clean shutdown: others may take the steps at once)."""
        result = self._write(
            update(jobs)
            .where(jobs.c.claimed_by == worker)
            .values(claimed_by=None, claimed_until_ms=None, version=jobs.c.version + 1)
        )
        return int(result.rowcount)

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

    def lease_items(self, consumer_id: int, now_s: int) -> list[tuple[str, str, int, int | None, str]]:
        """(provider name, class, amount, VLAN tag, provider kind) of the lease's rows not ended at ``now_s``,
        in allocation order."""
        rows = self.connection.execute(_LEASE_ITEMS, {"consumer_id": consumer_id, "now_s": now_s}).all()
        return [(str(r[0]), str(r[1]), int(r[2]), r[3], str(r[4])) for r in rows]

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
        stmt = (
            select(jobs).where(jobs.c.lease_uuid == lease_uuid, jobs.c.step.is_not(None)).order_by(jobs.c.seq)
        )
        if self._postgres():
            stmt = stmt.with_for_update()
        return [JobSnapshot.of(r) for r in self.connection.execute(stmt)]

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


__all__ = [
    "ACTIVE_STATES",
    "STEP_COLUMNS",
    "TERMINAL_STATES",
    "JobRepository",
    "JobSnapshot",
    "claimable",
    "decode_cursor",
    "encode_cursor",
    "hosts_json",
    "hosts_of",
    "replace",
]
