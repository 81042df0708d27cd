"""The service path's decisions held fixed across its speed-ups (decision 0040): the jobs' start times,
as a digest, equal those of main at 75b7d05 (before the speed-ups), on a synthetic trace with early
ends and mixed widths and on the first 200 KTH-SP2 jobs (skipped without shared/traces)."""

from __future__ import annotations

import hashlib
import json
import random

import pytest

from slotbroker.replay.service_path import replay_services
from slotbroker.replay.trace import Trace, prefix, read_swf

from .support import make_trace, trace_file

# replay_services(..., placement="least_gap", policy=p).run.starts, digested by ``digest``, on 75b7d05
SYNTHETIC = {"conservative": "7746ca3958cfa2e0", "easy": "35886d9ce5f69a59", "priority": "7346a69f744c081a"}
KTH_200 = {"conservative": "ed077a71621e7d82", "easy": "03c920058b579ff5", "priority": "6d07119f2abf23f4"}


def digest(starts: tuple[int, ...]) -> str:
    return hashlib.sha256(json.dumps(list(starts)).encode()).hexdigest()[:16]


def synthetic() -> Trace:
    """80 jobs on 12 one-core hosts, widths 1-12, runs shorter than asked (early ends) at random."""
    rng = random.Random(16)
    t, rows = 0, []
    for _ in range(80):
        t += rng.randint(0, 40)
        req = rng.randint(5, 120)
        rows.append((t, rng.randint(1, req), req, rng.choice((1, 2, 3, 4, 6, 12))))
    return make_trace(12, *rows, epoch_s=1_000_000_000)


@pytest.mark.parametrize("policy", sorted(SYNTHETIC))
def test_the_synthetic_traces_starts_are_mains(policy: str) -> None:
    run = replay_services(synthetic(), placement="least_gap", policy=policy).run
    assert digest(run.starts) == SYNTHETIC[policy]


@pytest.mark.parametrize("policy", sorted(KTH_200))
def test_the_first_200_kth_jobs_start_as_on_main(policy: str) -> None:
    trace = prefix(read_swf(trace_file("KTH-SP2_predictsim_log.swf.gz")), 200)
    run = replay_services(trace, placement="least_gap", policy=policy).run
    assert digest(run.starts) == KTH_200[policy]
