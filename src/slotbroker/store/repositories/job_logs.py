"""A planner job's history: its state transitions (each state entered at most once) and its log lines."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from slotbroker.store import tables

job_transitions = tables.job_transitions
job_logs = tables.job_logs

_TRANSITION_INSERT: dict[str, Any] = {
    "postgresql": pg_insert(job_transitions).on_conflict_do_nothing(index_elements=["job_seq", "to_state"]),
    "sqlite": sqlite_insert(job_transitions).on_conflict_do_nothing(index_elements=["job_seq", "to_state"]),
}
_LOG_INSERT = insert(job_logs)


class JobLogRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add_transition(
        self, seq: int, from_state: str | None, to_state: str, at_ms: int, detail: str = ""
    ) -> None:
        """Record entering ``to_state`` (once: a second record of the same state is ignored)."""
        self.add_transitions([(seq, from_state, to_state, at_ms, detail)])

    def add_transitions(self, rows: Sequence[tuple[int, str | None, str, int, str]]) -> None:
        """Record several transitions (job seq, from, to, at_ms, detail) in one statement, each at most
        once."""
        if not rows:
            return
        conn = self.session.connection()
        conn.execute(
            _TRANSITION_INSERT[conn.dialect.name],
            [
                {"job_seq": q, "from_state": f, "to_state": t, "at_ms": at, "detail": d}
                for q, f, t, at, d in rows
            ],
        )

    def add_lines(self, seq: int, at_ms: int, lines: Iterable[tuple[str, str]]) -> None:
        """Append (stream, line) pairs to a job's log, in one statement."""
        rows = [{"job_seq": seq, "at_ms": at_ms, "stream": stream, "line": line} for stream, line in lines]
        if rows:
            self.session.connection().execute(_LOG_INSERT, rows)

    def transitions(self, seq: int) -> list[tuple[str | None, str, int, str]]:
        t = job_transitions.c
        rows = (
            self.session.connection()
            .execute(
                select(t.from_state, t.to_state, t.at_ms, t.detail).where(t.job_seq == seq).order_by(t.id)
            )
            .all()
        )
        return [(r.from_state, str(r.to_state), int(r.at_ms), str(r.detail)) for r in rows]

    def lines(self, seq: int, *, after_id: int = 0, limit: int = 1000) -> list[tuple[int, int, str, str]]:
        log = job_logs.c
        rows = (
            self.session.connection()
            .execute(
                select(log.id, log.at_ms, log.stream, log.line)
                .where(log.job_seq == seq, log.id > after_id)
                .order_by(log.id)
                .limit(limit)
            )
            .all()
        )
        return [(int(r.id), int(r.at_ms), str(r.stream), str(r.line)) for r in rows]

    def delete_of(self, seqs: Sequence[int]) -> None:
        """Drop the transitions and log lines of jobs ``seqs`` (before the jobs themselves)."""
        conn = self.session.connection()
        conn.execute(delete(job_logs).where(job_logs.c.job_seq.in_(seqs)))
        conn.execute(delete(job_transitions).where(job_transitions.c.job_seq.in_(seqs)))
