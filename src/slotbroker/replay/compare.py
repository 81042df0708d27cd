"""The service path beside the fast path on the same jobs: do they take the same decisions?"""

from __future__ import annotations

import time
from typing import Any

from slotbroker.replay.audit import audit
from slotbroker.replay.hosts import host_names
from slotbroker.replay.metrics import summarise
from slotbroker.replay.service_path import SERVICE_POLICIES, replay_services
from slotbroker.replay.simulate import simulate
from slotbroker.replay.trace import Trace, prefix


def compare_service_path(
    trace: Trace, jobs: int, *, placement: str = "least_gap", policy: str = "conservative"
) -> dict[str, Any]:
    """Replay the first ``jobs`` jobs through the services (``placement``: the engine's placement
    policy) and through the fast path's ``policy`` (``conservative``: book the earliest window on
    arrival; ``conservative_compact``: and the broker compacts the waiting leases on every early end;
    ``easy``: the head's reservation is a lease, the others start when a window starts now;
    ``priority``: ``easy`` on the queue ordered by expansion factor);
    count the jobs whose starts agree, the audit's violations of the service path's bookings (read back
    from its database) and both average bounded slowdowns."""
    if policy not in SERVICE_POLICIES:
        raise ValueError(f"the service path replays {', '.join(SERVICE_POLICIES)}, not {policy!r}")
    part = prefix(trace, jobs)
    fast = simulate(part, policy)
    t0, c0 = time.perf_counter(), time.process_time()
    svc = replay_services(part, placement=placement, policy=policy)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    capacity = dict.fromkeys(host_names(trace.capacity), 1)
    report = audit(svc.run.jobs, svc.run.starts, svc.bookings, capacity)
    pairs = list(zip(fast.starts, svc.run.starts, strict=True))
    ours, theirs = summarise(svc.run), summarise(fast)
    return {
        "jobs": len(part.jobs),
        "policy": policy,
        "placement": placement,
        "agree": sum(a == b for a, b in pairs),
        "later": sum(b > a for a, b in pairs),
        "earlier": sum(b < a for a, b in pairs),
        "violations": report.violations,
        "avg_bounded_slowdown": round(ours.avg_bounded_slowdown, 2),
        "fast_path_avg_bounded_slowdown": round(theirs.avg_bounded_slowdown, 2),
        "mean_wait_s": round(ours.mean_wait_s, 1),
        "fast_path_mean_wait_s": round(theirs.mean_wait_s, 1),
        "utilization": round(ours.utilization, 4),
        "fast_path_utilization": round(theirs.utilization, 4),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),  # this process's CPU: the machine's load moves wall time, less this
        "ms_per_job": round(wall * 1000 / max(len(part.jobs), 1), 1),
        "cpu_ms_per_job": round(cpu * 1000 / max(len(part.jobs), 1), 1),
        "fast_path_wall_s": round(fast.wall_s, 2),
    }
