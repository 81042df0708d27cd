"""Trace replay benchmark: KTH-SP2 (28,481 jobs after the published filter, 100 processors) under every
policy, beside predictsim's published EASY (92.58) and EASY-SJBF (69.41) average bounded slowdowns.

Prints ONE JSON object: ``runner.result_json`` (per policy: avg_bounded_slowdown, mean_wait_s,
utilization, violations, wall_s, wait percentiles, minus_published) plus ``service_path`` (the first
``--service-jobs`` jobs, or ``all``, through the real services, ``conservative``,
``conservative_compact``, ``easy`` and ``priority``, compared with the fast path; ``--service-policies``
picks some) and ``alibaba`` (GPU pods placed and GPU utilisation per node order, with and without
deletions).

``python bench/replay.py [--traces DIR] [--service-jobs N|all] [--service-policies P,...] [--skip-alibaba]
[--skip-fast]``. The traces are read from
``<repo>/../shared/traces`` by default; without them the bench says so and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from slotbroker.replay.alibaba import POLICIES as POD_POLICIES
from slotbroker.replay.alibaba import read_nodes, read_pods, replay_pods, summarise_pods
from slotbroker.replay.compare import compare_service_path
from slotbroker.replay.policies import POLICIES
from slotbroker.replay.published import baseline_for
from slotbroker.replay.runner import replay_trace, result_json
from slotbroker.replay.service_path import SERVICE_POLICIES
from slotbroker.replay.trace import read_swf

TRACES = Path(__file__).resolve().parents[1].parent / "shared" / "traces"
KTH = "KTH-SP2_predictsim_log.swf.gz"


def service_jobs(text: str) -> int | str:
    return "all" if text == "all" else int(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=Path, default=TRACES)
    parser.add_argument("--service-jobs", type=service_jobs, default=300, help="N, or all (0: none)")
    parser.add_argument("--service-policies", default=",".join(SERVICE_POLICIES))
    parser.add_argument("--skip-alibaba", action="store_true")
    parser.add_argument("--skip-fast", action="store_true", help="only the service path")
    args = parser.parse_args()
    path = args.traces / KTH
    if not path.exists():
        print(f"no trace at {path}: the bench needs shared/traces (see docs/replay.md)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    trace = read_swf(path)
    doc: dict[str, Any] = {}
    if not args.skip_fast:
        results = replay_trace(trace, POLICIES)
        published = baseline_for(trace.name, args.traces / "predictsim_easy_metrics.tsv")
        doc = result_json(trace, results, published)
        doc["all_policies_wall_s"] = round(sum(r.wall_s for r in results), 2)
    doc["trace"] = "KTH-SP2"
    jobs = len(trace.jobs) if args.service_jobs == "all" else int(args.service_jobs)
    if jobs:
        doc["service_path"] = {
            policy: compare_service_path(trace, jobs, policy=policy)
            for policy in args.service_policies.split(",")
        }
    if not args.skip_alibaba:
        nodes = read_nodes(args.traces / "alibaba_openb_node_list_all_node.csv")
        pods = read_pods(args.traces / "alibaba_openb_pod_list_default.csv.gz")
        doc["alibaba"] = {
            mode: {p: summarise_pods(replay_pods(nodes, pods, p, keep_all=keep)) for p in POD_POLICIES}
            for mode, keep in (("lifetimes", False), ("all_at_once", True))
        }
    doc["bench_wall_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
