"""The figures of a replay, defined once (the JSON output, the HTML report, the bench and the tests).

* wait = start - submit; percentiles by linear interpolation (numpy's default);
* bounded slowdown = max(1, (wait + run) / max(10, run)), averaged over all jobs: the published table's
  ``avgbsld`` (10 s bound);
* utilisation = sum(run x procs) / (capacity x (last end - first submit)): the share of the machine's
  processor-seconds the jobs used between the first arrival and the last completion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from slotbroker.replay.simulate import Run

BSLD_BOUND_S = 10
PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class Metrics:
    jobs: int
    mean_wait_s: float
    wait_percentiles_s: dict[int, float]
    max_wait_s: int
    avg_bounded_slowdown: float
    utilization: float
    makespan_s: int


def arrays(run: Run) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(wait, run, procs) per job."""
    submit = np.fromiter((j.submit for j in run.jobs), np.int64, len(run.jobs))
    runtime = np.fromiter((j.run for j in run.jobs), np.int64, len(run.jobs))
    procs = np.fromiter((j.procs for j in run.jobs), np.int64, len(run.jobs))
    return np.asarray(run.starts, dtype=np.int64) - submit, runtime, procs


def bounded_slowdowns(wait: npt.NDArray[np.int64], runtime: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    return np.maximum(1.0, (wait + runtime) / np.maximum(BSLD_BOUND_S, runtime))


def summarise(run: Run) -> Metrics:
    if not run.jobs:
        return Metrics(0, 0.0, dict.fromkeys(PERCENTILES, 0.0), 0, 0.0, 0.0, 0)
    wait, runtime, procs = arrays(run)
    first = min(j.submit for j in run.jobs)
    last = int((np.asarray(run.starts, dtype=np.int64) + runtime).max())
    span = max(last - first, 1)
    return Metrics(
        jobs=len(run.jobs),
        mean_wait_s=float(wait.mean()),
        wait_percentiles_s={p: float(np.percentile(wait, p)) for p in PERCENTILES},
        max_wait_s=int(wait.max()),
        avg_bounded_slowdown=float(bounded_slowdowns(wait, runtime).mean()),
        utilization=float((runtime * procs).sum() / (run.capacity * span)),
        makespan_s=span,
    )
