"""Find-slot after a write, per call, in the service-path replay: the CPU of ``FindSlotService.find``,
``CalendarCache.current``, ``calendar_cache.apply_changes``, the generation read and the engine search,
each timed by a ``time.process_time()`` wrapper (no profiler), over the first ``--jobs`` KTH-SP2 jobs.

Only functions that do not receive the cached entry are wrapped: a wrapper around ``_replay`` or
``_unshared`` holds a reference to it, so the replay would copy the index instead of changing it in
place, and the figures would be of another path (decision 0050).

``PYTHONPATH=src python bench/find_after_write.py [--policy conservative] [--jobs 1000]``; prints ONE
JSON object: per function, [calls, ms CPU a call].
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slotbroker.replay.service_path import replay_services
from slotbroker.replay.trace import prefix, read_swf
from slotbroker.services.find_slot import calendar_cache, service

TRACE = Path(__file__).resolve().parents[1] / ".." / "shared" / "traces" / "KTH-SP2_predictsim_log.swf.gz"


def _timed(acc: dict[str, list[float]], label: str, f: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(f)
    def timed(*args: Any, **kwargs: Any) -> Any:
        t = time.process_time()
        try:
            return f(*args, **kwargs)
        finally:
            slot = acc.setdefault(label, [0, 0.0])
            slot[0] += 1
            slot[1] += time.process_time() - t

    return timed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--policy", default="conservative")
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--trace", type=Path, default=TRACE)
    args = ap.parse_args()
    acc: dict[str, list[float]] = {}
    for owner, name, label in (
        (service.FindSlotService, "find", "find"),
        (service.FindSlotService, "_search", "search"),
        (calendar_cache.CalendarCache, "current", "current"),
        (calendar_cache.CalendarCache, "generation", "generation"),
        (calendar_cache, "apply_changes", "apply_changes"),
        (service, "find_slots", "find_slots"),  # the engine search, as the service calls it
    ):
        setattr(owner, name, _timed(acc, label, getattr(owner, name)))
    jobs = prefix(read_swf(str(args.trace)), args.jobs)
    t0 = time.process_time()
    replay_services(jobs, policy=args.policy)
    total = time.process_time() - t0
    out: dict[str, Any] = {"cpu_ms_per_job": round(total * 1000 / args.jobs, 3)}
    out |= {k: [int(n), round(s * 1000 / max(n, 1), 3)] for k, (n, s) in acc.items()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
