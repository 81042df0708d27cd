"""What a lease event tick costs inside the service-path replay (issue 16, decision 0049).

``PYTHONPATH=<tree>/src python bench/lease_tick_cost.py [--jobs 1000] [--policy conservative]
[--traces DIR]``

Replays the first ``jobs`` KTH-SP2 jobs through the services (``replay_services``, ``earliest``) with
``LeaseEventLoop.tick`` wrapped to take each tick's thread CPU time, grouped by how many leases the
tick fired (its ``_fire_lease`` calls) and by how many events. Prints one JSON line: the replay's CPU
ms per job, the ticks' total, the median CPU ms a tick per group (with the group's size), and a digest
of every booking (job, start, end, host) to check that two trees took the same decisions. Run it from
each tree in turn, alternating, several times: it measures whatever tree ``PYTHONPATH`` names.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from slotbroker.replay.service_path import replay_services
from slotbroker.replay.trace import prefix, read_swf
from slotbroker.services.booking import lease_events

HERE = Path(__file__).resolve().parents[1]
TRACES = HERE.parent / "shared" / "traces"
KTH = "KTH-SP2_predictsim_log.swf.gz"


def measure(jobs: int, policy: str, traces: Path) -> dict[str, Any]:
    loop_class = lease_events.LeaseEventLoop
    tick, fire = loop_class.tick, loop_class._fire_lease
    by_leases: dict[int, list[float]] = defaultdict(list)
    by_events: dict[int, list[float]] = defaultdict(list)
    calls = [0]

    def counted_fire(self: lease_events.LeaseEventLoop, consumer_id: int, now_s: int) -> int:
        calls[0] += 1
        return fire(self, consumer_id, now_s)

    def timed_tick(self: lease_events.LeaseEventLoop, now_s: int | None = None) -> int:
        calls[0] = 0
        start = time.thread_time_ns()
        fired = tick(self, now_s)
        ms = (time.thread_time_ns() - start) / 1e6
        by_leases[calls[0]].append(ms)
        by_events[fired].append(ms)
        return fired

    trace = prefix(read_swf(str(traces / KTH)), jobs)
    loop_class.tick, loop_class._fire_lease = timed_tick, counted_fire  # type: ignore[method-assign]
    try:
        cpu = time.process_time()
        run = replay_services(trace, policy=policy)
        cpu = time.process_time() - cpu
    finally:
        loop_class.tick, loop_class._fire_lease = tick, fire  # type: ignore[method-assign]
    every = [ms for group in by_leases.values() for ms in group]
    bookings = sorted((b.job, b.start, b.end, b.host) for b in run.bookings)
    return {
        "jobs": jobs,
        "policy": policy,
        "cpu_ms_per_job": round(cpu * 1000 / jobs, 3),
        "ticks": len(every),
        "ticks_cpu_s": round(sum(every) / 1000, 3),
        "by_leases_fired": {
            k: [len(v), round(statistics.median(v), 3)] for k, v in sorted(by_leases.items())
        },
        "by_events_fired": {
            k: [len(v), round(statistics.median(v), 3)] for k, v in sorted(by_events.items())
        },
        "bookings_digest": hashlib.sha1(repr(bookings).encode()).hexdigest()[:12],
    }


def _medians(groups: dict[int, list[float]]) -> dict[int, list[float]]:
    """group -> [how many ticks, their median CPU ms]."""
    return {k: [len(v), round(statistics.median(v), 3)] for k, v in sorted(groups.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--policy", default="conservative")
    parser.add_argument("--traces", type=Path, default=TRACES)
    args = parser.parse_args()
    print(json.dumps(measure(args.jobs, args.policy, args.traces)))


if __name__ == "__main__":
    main()
