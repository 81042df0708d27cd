"""How far the service-path ``conservative_compact`` replay gets, for runs too long to wait for.

``PYTHONPATH=src python bench/compact_progress.py [--every 100] [--jobs N|all]``

``bench/replay.py`` prints only when the replay is done; the whole KTH-SP2 trace with compaction through
the services runs for tens of minutes. This runs the same replay (``replay_services``, ``least_gap``)
and prints to stderr, every ``--every`` compaction passes (one per early end with waiting jobs), the
pass count, the trace time, the jobs booked so far, the waiting jobs and the process CPU since start:
two trees stopped by a timeout can be compared pass by pass (the same pass is the same point of the
trace while their starts are the same).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import slotbroker.replay.service_path as service_path
from slotbroker.replay.trace import prefix, read_swf

HERE = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--jobs", default="all")
    parser.add_argument(
        "--trace", type=Path, default=HERE.parent / "shared" / "traces" / "KTH-SP2_predictsim_log.swf.gz"
    )
    args = parser.parse_args()
    if not args.trace.exists():
        print(f"no trace at {args.trace} (../shared/traces beside the repository; --trace)", file=sys.stderr)
        raise SystemExit(2)
    started = time.process_time()
    passes = 0
    plain = vars(service_path)["compact_waiting"]  # the name the replay calls

    def logged(books: Any, now: int) -> int:
        nonlocal passes
        passes += 1
        moved = int(plain(books, now))
        if passes % args.every == 0:
            print(
                f"pass {passes} trace_t {now} jobs_booked {len(books.leases)} waiting {len(books.waiting)} "
                f"cpu_s {time.process_time() - started:.1f}",
                file=sys.stderr,
                flush=True,
            )
        return moved

    vars(service_path)["compact_waiting"] = logged
    trace = read_swf(args.trace)
    jobs = len(trace.jobs) if args.jobs == "all" else int(args.jobs)
    service_path.replay_services(prefix(trace, jobs), placement="least_gap", policy="conservative_compact")
    print(f"done: {passes} passes, {jobs} jobs, cpu_s {time.process_time() - started:.1f}", flush=True)


if __name__ == "__main__":
    main()
