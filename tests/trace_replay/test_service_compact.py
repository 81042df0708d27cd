"""``conservative_compact`` through the services (replay/service_compact.py): the broker's compaction on
every early end takes the fast path's ``conservative_compact`` decisions where they must agree (one host;
every job takes every host; a small mixed trace), moves leases that plain conservative leaves, and
passes the audit."""

from __future__ import annotations

import random

import pytest

from slotbroker.replay.audit import audit
from slotbroker.replay.hosts import host_names
from slotbroker.replay.service_path import SERVICE_POLICIES, replay_services
from slotbroker.replay.simulate import simulate
from slotbroker.replay.trace import Trace

from .support import EARLY_END, make_trace

EPOCH = 1_000_000_000


def random_trace(capacity: int, sizes: tuple[int, ...], jobs: int, seed: int) -> Trace:
    rng = random.Random(seed)
    t, rows = 0, []
    for _ in range(jobs):
        t += rng.randint(0, 30)
        req = rng.randint(10, 120)
        rows.append((t, rng.randint(1, req), req, rng.choice(sizes)))
    return make_trace(capacity, *rows, epoch_s=EPOCH)


def test_it_is_a_service_policy() -> None:
    assert "conservative_compact" in SERVICE_POLICIES


def test_the_early_end_trace_moves_what_conservative_leaves() -> None:
    """J1 (both processors, asks 100 s) ends at 10: compaction moves J2 to 10 and J3 to 60 (behind it);
    plain conservative keeps their reservations at 100 and 150."""
    plain = replay_services(EARLY_END, placement="least_gap")
    compact = replay_services(EARLY_END, placement="least_gap", policy="conservative_compact")
    assert compact.run.starts == simulate(EARLY_END, "conservative_compact").starts
    assert compact.run.starts != plain.run.starts
    assert compact.run.starts == (0, 10, 60)
    assert plain.run.starts == (0, 100, 150)


@pytest.mark.parametrize(
    ("capacity", "sizes", "seed"),
    [
        (1, (1,), 11),  # one host: where a job goes is no question, only when
        (3, (3,), 12),  # every job takes every host
        (4, (1, 2, 4), 13),  # mixed sizes
    ],
)
def test_compaction_through_the_services_takes_the_fast_paths_decisions(
    capacity: int, sizes: tuple[int, ...], seed: int
) -> None:
    trace = random_trace(capacity, sizes, 16, seed)
    fast = simulate(trace, "conservative_compact")
    assert fast.starts != simulate(trace, "conservative").starts  # compaction matters on this trace
    svc = replay_services(trace, placement="least_gap", policy="conservative_compact")
    assert svc.run.starts == fast.starts
    report = audit(svc.run.jobs, svc.run.starts, svc.bookings, dict.fromkeys(host_names(capacity), 1))
    assert report.violations == 0, report.examples
