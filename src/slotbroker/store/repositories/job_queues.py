"""Queue policies: which due steps a worker claims first, as the ``SELECT seq`` that
``JobClaimRepository.due`` runs. One interface, three policies.

Every policy puts steps of jobs already under way (provisioning, submitted, running, tearing down) before
pending jobs that would start: finishing work frees resources sooner and never waits behind new work.
Among pending jobs:

* ``fifo``: oldest first (creation order, ``seq``).
* ``priority``: highest ``priority`` first, then oldest.
* ``fair``: fair share by project - a project's next job ranks by (its jobs under way + its position
  in its own queue), ties going to the project served least recently (its latest provisioning start),
  then oldest: a project with many queued jobs cannot starve one with few (they interleave, weighted
  by current use). It reads a per-project aggregate over the jobs table (bounded by retention).

Head-of-line blocking is avoided by construction: only *due* steps are candidates (a job waiting for its
lease's start or for a poll interval is not), and a pending job whose provisioner is at its
``max_active`` limit is skipped at claim time (``JobClaimRepository.due``) while the jobs behind it go on.
The policy ranks ``lookahead`` times the claim size so skipped jobs leave enough candidates behind them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import Select, and_, case, func, select

from slotbroker.domain.jobs import JobState
from slotbroker.store.repositories.job_rows import ACTIVE_STATES, claimable, jobs

LOOKAHEAD = 4  # candidates ranked per claimed step: room for skips behind saturated provisioners

_STARTING = case((jobs.c.state == JobState.PENDING.value, 1), else_=0)


class QueuePolicy(Protocol):
    name: str

    def ranked(self, now_ms: int, limit: int, provisioners: Sequence[str] | None = None) -> Select[int]:
        """``SELECT seq`` of claimable jobs (of ``provisioners``, if given), best first, at most ``limit``."""
        ...


class Fifo:
    name = "fifo"

    def ranked(self, now_ms: int, limit: int, provisioners: Sequence[str] | None = None) -> Select[int]:
        return (
            select(jobs.c.seq)
            .where(claimable(now_ms, provisioners))
            .order_by(_STARTING, jobs.c.seq)
            .limit(limit)
        )


class Priority:
    name = "priority"

    def ranked(self, now_ms: int, limit: int, provisioners: Sequence[str] | None = None) -> Select[int]:
        return (
            select(jobs.c.seq)
            .where(claimable(now_ms, provisioners))
            .order_by(_STARTING, jobs.c.priority.desc(), jobs.c.seq)
            .limit(limit)
        )


class FairShare:
    name = "fair"

    def ranked(self, now_ms: int, limit: int, provisioners: Sequence[str] | None = None) -> Select[int]:
        active = case((and_(jobs.c.step.is_not(None), jobs.c.state.in_(ACTIVE_STATES)), 1), else_=0)
        usage = (
            select(
                jobs.c.project.label("project"),
                func.sum(active).label("active"),
                func.max(jobs.c.provision_started_ms).label("last_start"),
            )
            .group_by(jobs.c.project)
            .subquery("usage")
        )
        position = func.row_number().over(partition_by=jobs.c.project, order_by=jobs.c.seq)
        candidates = (
            select(
                jobs.c.seq.label("seq"),
                _STARTING.label("starting"),
                (func.coalesce(usage.c.active, 0) + position).label("share"),
                func.coalesce(usage.c.last_start, 0).label("last_start"),
            )
            .select_from(jobs.outerjoin(usage, usage.c.project == jobs.c.project))
            .where(claimable(now_ms, provisioners))
            .subquery("candidates")
        )
        return (
            select(candidates.c.seq)
            .order_by(candidates.c.starting, candidates.c.share, candidates.c.last_start, candidates.c.seq)
            .limit(limit)
        )


def one_job(job_id: str, now_ms: int, provisioners: Sequence[str] | None = None) -> Select[int]:
    """``SELECT seq`` of job ``job_id`` if its step is claimable (an external queue's task runs one job)."""
    return select(jobs.c.seq).where(jobs.c.id == job_id, claimable(now_ms, provisioners))


POLICIES: dict[str, type[Fifo] | type[Priority] | type[FairShare]] = {
    "fifo": Fifo,
    "priority": Priority,
    "fair": FairShare,
}


def make_policy(name: str) -> QueuePolicy:
    try:
        return POLICIES[name]()
    except KeyError:
        raise ValueError(f"unknown queue policy {name!r}; one of {', '.join(POLICIES)}") from None


__all__ = ["LOOKAHEAD", "POLICIES", "FairShare", "Fifo", "Priority", "QueuePolicy", "make_policy", "one_job"]
