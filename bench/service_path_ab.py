"""The service-path replay (issue 16) on two source trees, back to back in one run: CPU per job and
whether the two take the same decisions.

``python bench/service_path_ab.py --base-src /tmp/base/src [--head-src DIR] [--jobs 1000,3000]
[--policies conservative,easy,priority] [--traces DIR]``

For every (prefix, policy), the base tree then the head tree (``--head-src``, by default ``src``
beside this file; pass a copy to keep editing while it runs) replay the first
``jobs`` KTH-SP2 jobs through the services (``replay_services``, ``least_gap``) in a fresh interpreter
each, so neither inherits the other's warm caches. Each reports the process CPU time of the replay, its
wall time and a digest of the jobs' start times; the lines are JSON, one per replay, then one summary
line per (prefix, policy): CPU ms per job of both, their ratio, and whether the digests are equal.
The machine's load average is printed with each line (other work on a shared machine moves wall time
far more than CPU time).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
TRACES = HERE.parent / "shared" / "traces"
KTH = "KTH-SP2_predictsim_log.swf.gz"

CHILD = """
import hashlib, json, sys, time
from pathlib import Path
from slotbroker.replay.service_path import replay_services
from slotbroker.replay.trace import prefix, read_swf

path, jobs, policy = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
part = prefix(read_swf(path), jobs)
c0, t0 = time.process_time(), time.perf_counter()
run = replay_services(part, placement="least_gap", policy=policy).run
cpu, wall = time.process_time() - c0, time.perf_counter() - t0
digest = hashlib.sha256(json.dumps(list(run.starts)).encode()).hexdigest()[:16]
print(json.dumps({"cpu_s": round(cpu, 2), "wall_s": round(wall, 2), "starts": digest}))
"""


def replay(src: Path, trace: Path, jobs: int, policy: str) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(trace), str(jobs), policy],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-src", type=Path, required=True)
    parser.add_argument("--head-src", type=Path, default=HERE / "src")
    parser.add_argument("--jobs", default="1000,3000")
    parser.add_argument("--policies", default="conservative,easy,priority")
    parser.add_argument("--traces", type=Path, default=TRACES)
    args = parser.parse_args()
    trace = args.traces / KTH
    if not trace.exists():
        print(f"no trace at {trace}", file=sys.stderr)
        return 2
    for jobs in (int(j) for j in args.jobs.split(",")):
        for policy in args.policies.split(","):
            got = {}
            for name, src in (("base", args.base_src), ("head", args.head_src)):
                got[name] = replay(src, trace, jobs, policy)
                line = {"jobs": jobs, "policy": policy, "tree": name, **got[name]}
                print(json.dumps({**line, "load": os.getloadavg()[0]}), flush=True)
            base_ms = 1000 * float(str(got["base"]["cpu_s"])) / jobs
            head_ms = 1000 * float(str(got["head"]["cpu_s"])) / jobs
            summary = {
                "jobs": jobs,
                "policy": policy,
                "base_cpu_ms_per_job": round(base_ms, 1),
                "head_cpu_ms_per_job": round(head_ms, 1),
                "head_over_base": round(head_ms / base_ms, 2),
                "same_starts": got["base"]["starts"] == got["head"]["starts"],
            }
            print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
