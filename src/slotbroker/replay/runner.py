"""Run policies over a trace and put the answers in one JSON shape (CLI, bench, report and tests share it)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from slotbroker.replay.audit import AuditReport, audit
from slotbroker.replay.hosts import assign
from slotbroker.replay.metrics import Metrics, summarise
from slotbroker.replay.simulate import Run, simulate
from slotbroker.replay.trace import Trace

Progress = Callable[[str, int], None]  # (policy, jobs started so far)


@dataclass(frozen=True)
class PolicyResult:
    run: Run
    metrics: Metrics
    audit: AuditReport
    wall_s: float  # the replay and its host bookings (the audit is timed apart)
    audit_s: float


def replay_policy(trace: Trace, policy: str, *, progress: Progress | None = None) -> PolicyResult:
    t0 = time.perf_counter()
    run = simulate(trace, policy, progress=None if progress is None else (lambda n: progress(policy, n)))
    bookings, capacity = assign(run)
    t1 = time.perf_counter()
    report = audit(run.jobs, run.starts, bookings, capacity)
    return PolicyResult(run, summarise(run), report, t1 - t0, time.perf_counter() - t1)


def replay_trace(
    trace: Trace, policies: Sequence[str], *, progress: Progress | None = None
) -> list[PolicyResult]:
    return [replay_policy(trace, name, progress=progress) for name in policies]


def policy_json(result: PolicyResult, baseline: dict[str, float]) -> dict[str, Any]:
    m = result.metrics
    out: dict[str, Any] = {
        "avg_bounded_slowdown": round(m.avg_bounded_slowdown, 2),
        "mean_wait_s": round(m.mean_wait_s, 1),
        "utilization": round(m.utilization, 4),
        "violations": result.audit.violations,
        "wall_s": round(result.wall_s, 2),
        **{f"wait_p{p}_s": round(v, 1) for p, v in m.wait_percentiles_s.items()},
        "max_wait_s": m.max_wait_s,
    }
    if baseline:
        out["minus_published"] = {k: round(m.avg_bounded_slowdown - v, 2) for k, v in baseline.items()}
    return out


def result_json(
    trace: Trace, results: Sequence[PolicyResult], baseline: dict[str, float] | None = None
) -> dict[str, Any]:
    """``{"trace", "jobs", "policies": {name: {...}}}`` (+ ``published`` when the baseline is known)."""
    out: dict[str, Any] = {
        "trace": trace.name,
        "jobs": len(trace.jobs),
        "capacity": trace.capacity,
        "policies": {r.run.policy: policy_json(r, baseline or {}) for r in results},
    }
    if baseline:
        out["published"] = {k: round(v, 2) for k, v in baseline.items()}
    return out
