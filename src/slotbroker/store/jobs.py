"""SQL for planner jobs: insert once by id, claim due steps, commit a step, keyset listing, purge.

Claiming is the only contended write. PostgreSQL: the candidate rows are locked with
``FOR UPDATE SKIP LOCKED`` so any number of workers (embedded pools, procrastinate workers, replicas)
claim disjoint steps without waiting on each other. SQLite: the write transaction starts with
``BEGIN IMMEDIATE`` (``store.db``), which makes the claimer the only writer; the re-check of the claim
predicate in the UPDATE does the rest. A claim is a lease on the step (``claimed_until_ms``), renewed by
the worker's heartbeat; ``version`` is the claim token a commit must present.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any, cast

from sqlalchemy import (
    CursorResult,
    Select,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from slotbroker.domain.claims import ConsumerKind
from slotbroker.domain.errors import FieldError, ValidationFailed
from slotbroker.domain.jobs import TERMINAL, JobState, Step
from slotbroker.store.db import READONLY, Database
from slotbroker.store.models import ConsumerRow, JobLogRow, JobRow, JobTransitionRow

J = cast(Table, JobRow.__table__)
C = cast(Table, ConsumerRow.__table__)
T = cast(Table, JobTransitionRow.__table__)
L = cast(Table, JobLogRow.__table__)

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


def _insert(conn: Connection) -> Any:
    return pg_insert if conn.dialect.name == "postgresql" else sqlite_insert


@contextmanager
def transaction(db: Database, *, readonly: bool = False) -> Iterator[Connection]:
    """One Core transaction (no ORM session: the planner's hot path); commits if the block succeeds.
    Write transactions on SQLite start with ``BEGIN IMMEDIATE`` (``store.db``)."""
    with db.engine.connect() as conn:
        if readonly:
            conn.execution_options(**{READONLY: True})
        with conn.begin():
            yield conn


def _write(conn: Connection, stmt: Any) -> CursorResult[Any]:
    """Run an UPDATE / DELETE (its result has a ``rowcount``)."""
    return conn.execute(stmt)


def is_postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


_JOB_INSERT = {
    "postgresql": pg_insert(J).on_conflict_do_nothing(index_elements=["id"]).returning(J.c.seq),
    "sqlite": sqlite_insert(J).on_conflict_do_nothing(index_elements=["id"]).returning(J.c.seq),
}


def insert_job(conn: Connection, values: dict[str, Any]) -> int | None:
    """Insert a job unless one with the same id exists (then None: the id is the idempotency key)."""
    seq = conn.execute(_JOB_INSERT[conn.dialect.name], values).scalar_one_or_none()
    return None if seq is None else int(seq)


def get_job(conn: Connection, job_id: str, *, lock: bool = False) -> JobSnapshot | None:
    stmt = select(J).where(J.c.id == job_id)
    if lock:
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    return None if row is None else JobSnapshot.of(row)


def get_by_seq(conn: Connection, seq: int, *, lock: bool = False) -> JobSnapshot | None:
    stmt = select(J).where(J.c.seq == seq)
    if lock:
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    return None if row is None else JobSnapshot.of(row)


def add_transition(
    conn: Connection, seq: int, from_state: str | None, to_state: str, at_ms: int, detail: str = ""
) -> None:
    """Record entering ``to_state`` (once: a second record of the same state is ignored)."""
    add_transitions(conn, [(seq, from_state, to_state, at_ms, detail)])


_T_INSERT = {
    "postgresql": pg_insert(T).on_conflict_do_nothing(index_elements=["job_seq", "to_state"]),
    "sqlite": sqlite_insert(T).on_conflict_do_nothing(index_elements=["job_seq", "to_state"]),
}
_L_INSERT = insert(L)


def add_transitions(conn: Connection, rows: Sequence[tuple[int, str | None, str, int, str]]) -> None:
    """Record several transitions (job seq, from, to, at_ms, detail) in one statement, each at most once."""
    if not rows:
        return
    conn.execute(
        _T_INSERT[conn.dialect.name],
        [{"job_seq": q, "from_state": f, "to_state": t, "at_ms": at, "detail": d} for q, f, t, at, d in rows],
    )


def add_logs(conn: Connection, seq: int, at_ms: int, lines: Iterable[tuple[str, str]]) -> None:
    """Append (stream, line) pairs to a job's log, in one statement."""
    rows = [{"job_seq": seq, "at_ms": at_ms, "stream": stream, "line": line} for stream, line in lines]
    if rows:
        conn.execute(_L_INSERT, rows)


def claimable(now_ms: int, provisioners: Sequence[str] | None = None) -> Any:
    """Due, unclaimed (or claim run out) steps - of ``provisioners`` only, if given: a worker never
    takes a job whose provisioner it does not have (a fleet may run plugins on some workers only)."""
    cond = and_(
        J.c.step.is_not(None),
        J.c.due_ms <= now_ms,
        or_(J.c.claimed_until_ms.is_(None), J.c.claimed_until_ms < now_ms),
    )
    return cond if provisioners is None else and_(cond, J.c.provisioner.in_(list(provisioners)))


def active_by_provisioner(conn: Connection, now_ms: int) -> dict[str, int]:
    """Jobs holding (or about to hold) a provision, per provisioner."""
    busy = or_(
        J.c.state.in_(ACTIVE_STATES),
        and_(J.c.state == JobState.PENDING.value, J.c.claimed_until_ms >= now_ms),
    )
    rows = conn.execute(
        select(J.c.provisioner, func.count()).where(J.c.step.is_not(None), busy).group_by(J.c.provisioner)
    ).all()
    return {str(p): int(n) for p, n in rows}


def claim_due(
    conn: Connection,
    *,
    ranked: Select[int],
    now_ms: int,
    worker: str,
    until_ms: int,
    limit: int,
    max_active: dict[str, int],
) -> list[JobSnapshot]:
    """Claim up to ``limit`` due steps in the order ``ranked`` gives (a ``SELECT seq`` of claimable jobs,
    already ordered and limited by the queue policy). A pending job whose provisioner is at its
    ``max_active`` is skipped (the jobs behind it, of other provisioners, go ahead). The claim moves a
    pending job to ``provisioning`` (recorded) unless a cancel or expiry is already requested.
    """
    order = [int(row[0]) for row in conn.execute(ranked).all()]
    if not order:
        return []
    lock = select(J).where(J.c.seq.in_(order), claimable(now_ms))
    if is_postgres(conn):
        lock = lock.with_for_update(skip_locked=True)
    rows = {int(r.seq): JobSnapshot.of(r) for r in conn.execute(lock)}
    room: dict[str, int] = {}
    if max_active:
        active = active_by_provisioner(conn, now_ms)
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
        "version": J.c.version + 1,
        "updated_ms": now_ms,
    }
    if starting:
        ids = [j.seq for j in starting]
        values["provision_started_ms"] = case((J.c.seq.in_(ids), now_ms), else_=J.c.provision_started_ms)
    if entering:
        ids = [j.seq for j in entering]
        values["state"] = case((J.c.seq.in_(ids), JobState.PROVISIONING.value), else_=J.c.state)
        add_transitions(conn, [(j.seq, j.state, JobState.PROVISIONING.value, now_ms, "") for j in entering])
    conn.execute(update(J).where(J.c.seq.in_([j.seq for j in chosen])).values(**values))
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


def replace(job: JobSnapshot, values: dict[str, Any]) -> JobSnapshot:
    data = {f.name: getattr(job, f.name) for f in fields(JobSnapshot)}
    data.update({k: v for k, v in values.items() if k in data})
    return JobSnapshot(**data)


_LOCK_LEASE = (
    select(C.c.id)
    .where(C.c.uuid == bindparam("lease_uuid"), C.c.kind == ConsumerKind.LEASE.value)
    .with_for_update()
)


def lock_lease(conn: Connection, lease_uuid: str) -> None:
    """Lock a lease's consumer row (PostgreSQL; on SQLite ``BEGIN IMMEDIATE`` already excludes every
    other writer). A commit that may move its lease takes this lock *before* the job row: the lease's
    writers (update, cancel, the event loop, whose hooks then lock the lease's jobs) all lock the lease
    first, so they and the commit queue on that one row instead of waiting on each other in a cycle."""
    conn.execute(_LOCK_LEASE, {"lease_uuid": lease_uuid}).first()


def others_under_way(conn: Connection, lease_uuid: str, seq: int, now_ms: int) -> list[str]:
    """Ids of the lease's other jobs that use its allocation now: claimed by a worker (which may be
    calling ``provision`` with what it read) or holding a provision not yet released. The rows are locked
    (PostgreSQL), so a claim being made right now is waited for and seen, and a job claimed after this
    transaction reads the allocation it leaves behind."""
    stmt = (
        select(J.c.id, J.c.claimed_until_ms, J.c.provision_id, J.c.released_attempt, J.c.attempt)
        .where(J.c.lease_uuid == lease_uuid, J.c.seq != seq, J.c.step.is_not(None))
        .order_by(J.c.seq)
    )
    if is_postgres(conn):
        stmt = stmt.with_for_update()
    return [
        str(r.id)
        for r in conn.execute(stmt)
        if (r.claimed_until_ms is not None and r.claimed_until_ms >= now_ms)
        or (r.provision_id is not None and r.released_attempt < r.attempt)
    ]


def lock_for_commit(conn: Connection, seq: int, version: int, worker: str) -> JobSnapshot | None:
    """The job, locked, if ``worker`` still holds the claim ``version``; else None (the claim was lost)."""
    job = get_by_seq(conn, seq, lock=True)
    if job is None or job.version != version or job.claimed_by != worker:
        return None
    return job


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
    update(J)
    .where(
        J.c.seq == bindparam("b_seq"),
        J.c.version == bindparam("b_version"),
        J.c.claimed_by == bindparam("b_worker"),
        J.c.cancel_requested.is_(False),
        J.c.expire_requested.is_(False),
    )
    .values({name: bindparam(name) for name in STEP_COLUMNS})
)


def write_claimed(
    conn: Connection, job: JobSnapshot, worker: str, values: dict[str, Any]
) -> JobSnapshot | None:
    """Apply ``values`` if ``worker`` still holds claim ``job.version`` and no cancel or expiry has been
    requested - checked by the UPDATE itself, atomically. None if not (the caller takes the slow path)."""
    new = replace(job, {**values, "version": job.version + 1})
    params = {name: getattr(new, name) for name in STEP_COLUMNS}
    params.update(b_seq=job.seq, b_version=job.version, b_worker=worker)
    done = _write_params(conn, _WRITE_CLAIMED, params)
    return new if done.rowcount == 1 else None


def _write_params(conn: Connection, stmt: Any, params: dict[str, Any]) -> CursorResult[Any]:
    return conn.execute(stmt, params)


def write_job(conn: Connection, job: JobSnapshot, values: dict[str, Any]) -> JobSnapshot:
    """Apply ``values`` to a locked job and bump its version; returns the new snapshot."""
    values = {**values, "version": job.version + 1}
    conn.execute(update(J).where(J.c.seq == job.seq).values(**values))
    return replace(job, values)


def renew_claims(conn: Connection, worker: str, until_ms: int) -> int:
    """Heartbeat: extend every claim ``worker`` holds."""
    result = _write(
        conn,
        update(J).where(J.c.claimed_by == worker, J.c.step.is_not(None)).values(claimed_until_ms=until_ms),
    )
    return int(result.rowcount)


def release_claims(conn: Connection, worker: str) -> int:
    """Give back every claim ``worker`` holds (a clean shutdown: others may take the steps at once)."""
    result = _write(
        conn,
        update(J)
        .where(J.c.claimed_by == worker)
        .values(claimed_by=None, claimed_until_ms=None, version=J.c.version + 1),
    )
    return int(result.rowcount)


# -- listing ------------------------------------------------------------------------------------------------
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


def list_jobs(
    conn: Connection,
    *,
    limit: int,
    after: int | None = None,
    states: Sequence[str] | None = None,
    project: str | None = None,
    lease_uuid: str | None = None,
) -> list[JobSnapshot]:
    """Newest first, keyset on ``seq``: a page never repeats or skips a job when others are added."""
    stmt = select(J).order_by(J.c.seq.desc()).limit(limit)
    if after is not None:
        stmt = stmt.where(J.c.seq < after)
    if states:
        stmt = stmt.where(J.c.state.in_(list(states)))
    if project is not None:
        stmt = stmt.where(J.c.project == project)
    if lease_uuid is not None:
        stmt = stmt.where(J.c.lease_uuid == lease_uuid)
    return [JobSnapshot.of(r) for r in conn.execute(stmt)]


def transitions(conn: Connection, seq: int) -> list[tuple[str | None, str, int, str]]:
    rows = conn.execute(
        select(T.c.from_state, T.c.to_state, T.c.at_ms, T.c.detail).where(T.c.job_seq == seq).order_by(T.c.id)
    ).all()
    return [(r.from_state, str(r.to_state), int(r.at_ms), str(r.detail)) for r in rows]


def logs(
    conn: Connection, seq: int, *, after_id: int = 0, limit: int = 1000
) -> list[tuple[int, int, str, str]]:
    rows = conn.execute(
        select(L.c.id, L.c.at_ms, L.c.stream, L.c.line)
        .where(L.c.job_seq == seq, L.c.id > after_id)
        .order_by(L.c.id)
        .limit(limit)
    ).all()
    return [(int(r.id), int(r.at_ms), str(r.stream), str(r.line)) for r in rows]


def live_jobs_of_lease(conn: Connection, lease_uuid: str) -> list[JobSnapshot]:
    stmt = select(J).where(J.c.lease_uuid == lease_uuid, J.c.step.is_not(None)).order_by(J.c.seq)
    if is_postgres(conn):
        stmt = stmt.with_for_update()
    return [JobSnapshot.of(r) for r in conn.execute(stmt)]


def purge_terminal(conn: Connection, before_ms: int, limit: int = 1000) -> int:
    """Delete up to ``limit`` terminal jobs finished before ``before_ms``, with their transitions and logs."""
    seqs = [
        int(s)
        for s in conn.execute(
            select(J.c.seq)
            .where(J.c.step.is_(None), J.c.finished_ms < before_ms, J.c.state.in_(TERMINAL_STATES))
            .order_by(J.c.finished_ms)
            .limit(limit)
        ).scalars()
    ]
    if not seqs:
        return 0
    conn.execute(delete(L).where(L.c.job_seq.in_(seqs)))
    conn.execute(delete(T).where(T.c.job_seq.in_(seqs)))
    return int(_write(conn, delete(J).where(J.c.seq.in_(seqs))).rowcount)


__all__ = [
    "ACTIVE_STATES",
    "STEP_COLUMNS",
    "TERMINAL_STATES",
    "JobSnapshot",
    "active_by_provisioner",
    "add_logs",
    "add_transition",
    "add_transitions",
    "claim_due",
    "claim_unattended",
    "claimable",
    "decode_cursor",
    "encode_cursor",
    "get_by_seq",
    "get_job",
    "hosts_json",
    "hosts_of",
    "insert_job",
    "list_jobs",
    "live_jobs_of_lease",
    "lock_for_commit",
    "lock_lease",
    "logs",
    "next_due_ms",
    "others_under_way",
    "purge_terminal",
    "release_claims",
    "renew_claims",
    "replace",
    "transaction",
    "transitions",
    "write_claimed",
    "write_job",
]


def claim_unattended(
    conn: Connection,
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
        select(J)
        .where(J.c.step.is_not(None), J.c.state.in_(ACTIVE_STATES), J.c.seq > after_seq)
        .order_by(J.c.seq)
        .limit(limit)
    )
    if not takeover:
        stmt = stmt.where(or_(J.c.claimed_until_ms.is_(None), J.c.claimed_until_ms < now_ms))
    if provisioners is not None:
        stmt = stmt.where(J.c.provisioner.in_(list(provisioners)))
    if is_postgres(conn):  # taking over: wait for a dying worker's last transaction instead of skipping
        stmt = stmt.with_for_update(skip_locked=not takeover)
    out: list[JobSnapshot] = []
    for row in conn.execute(stmt):
        job = JobSnapshot.of(row)
        values = {"claimed_by": worker, "claimed_until_ms": until_ms, "version": job.version + 1}
        conn.execute(update(J).where(J.c.seq == job.seq).values(**values))
        out.append(replace(job, values))
    return out


def next_due_ms(conn: Connection) -> int | None:
    """When the earliest unclaimed step becomes due (an idle pool sleeps until then)."""
    value = conn.execute(
        select(func.min(J.c.due_ms)).where(J.c.step.is_not(None), J.c.claimed_by.is_(None))
    ).scalar()
    return None if value is None else int(value)
