"""Metrics and policies on hand-made traces; every expected figure is worked out in the comments."""

from __future__ import annotations

import pytest

from slotbroker.replay.metrics import summarise
from slotbroker.replay.simulate import simulate

from .support import EARLY_END, make_trace

# Capacity 2. A (both, 100 s) starts at 0. B (1 proc, asks 200, runs 50) arrives at 10, C (1, 30) at 20.
# EASY: B, at the head, gets the reservation t=100 (A's requested end). C cannot start before 100 either
# (nothing is free). At 100 A ends: B and C start. Waits: A 0, B 90, C 80.
SMALL = make_trace(2, (0, 100, 100, 2), (10, 50, 200, 1), (20, 30, 30, 1))


def test_easy_on_a_small_trace() -> None:
    run = simulate(SMALL, "easy")
    assert run.starts == (0, 100, 100)
    m = summarise(run)
    assert m.mean_wait_s == pytest.approx((0 + 90 + 80) / 3)
    assert m.wait_percentiles_s[50] == 80
    assert m.max_wait_s == 90
    # bounded slowdown: A max(1, 100/100) = 1; B (90 + 50) / 50 = 2.8; C (80 + 30) / 30 = 11/3
    assert m.avg_bounded_slowdown == pytest.approx((1 + 2.8 + 11 / 3) / 3)
    # used 2*100 + 50 + 30 = 280 processor-seconds of 2 x (150 - 0)
    assert m.utilization == pytest.approx(280 / 300)
    assert m.makespan_s == 150


def test_short_jobs_use_the_ten_second_bound() -> None:
    # one job, waits 4 s, runs 2 s: (4 + 2) / max(10, 2) = 0.6 -> bounded below by 1
    run = simulate(make_trace(1, (0, 5, 5, 1), (1, 2, 2, 1)), "easy")
    assert run.starts == (0, 5)
    assert summarise(run).avg_bounded_slowdown == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("policy", "starts"),
    [
        # J1 books [0, 100) but ends at 10. Conservative: J2 keeps its reservation at 100 and J3 its
        # reservation at 150 (after J2's booked end): nothing moves when J1 ends early.
        ("conservative", (0, 100, 150)),
        # Compaction: at 10 J2 moves to 10 (both processors free), then J3 to 60 (after J2's 50 s).
        ("conservative_compact", (0, 10, 60)),
        # EASY: at 10 J2 is the head and fits: it starts; J3 (1 proc) finds nothing free until 60.
        ("easy", (0, 10, 60)),
        ("easy_sjbf", (0, 10, 60)),
        # Priority at 10: expansion factors J2 (9 + 50) / 50 = 1.18, J3 (8 + 5) / 5 = 2.6: J3 first,
        # [10, 15) on one processor; J2 needs both and starts when J3 ends.
        ("priority", (0, 15, 10)),
    ],
)
def test_what_an_early_end_does_under_each_policy(policy: str, starts: tuple[int, ...]) -> None:
    run = simulate(EARLY_END, policy)
    assert run.starts == starts


def test_conservative_slowdown_by_hand() -> None:
    # waits 0, 99, 148; runs 10, 50, 5: bsld 1, (99 + 50) / 50 = 2.98, (148 + 5) / 10 = 15.3
    m = summarise(simulate(EARLY_END, "conservative"))
    assert m.avg_bounded_slowdown == pytest.approx((1 + 2.98 + 15.3) / 3)
    assert m.mean_wait_s == pytest.approx((0 + 99 + 148) / 3)


def test_priority_puts_the_most_stretched_job_first_and_sjbf_only_reorders_backfill() -> None:
    # Capacity 1: J1 runs [0, 100). J2 (1000 s) arrives at 1, J3 (10 s) at 2. At 100 the expansion
    # factors are J2 (99 + 1000) / 1000 = 1.099 and J3 (98 + 10) / 10 = 10.8: priority starts J3 first.
    trace = make_trace(1, (0, 100, 100, 1), (1, 1000, 1000, 1), (2, 10, 10, 1))
    assert simulate(trace, "priority").starts == (0, 110, 100)
    assert simulate(trace, "easy").starts == (0, 100, 1100)
    assert simulate(trace, "easy_sjbf").starts == (0, 100, 1100)  # J2 is the head and fits at 100


def test_backfilling_never_delays_the_head() -> None:
    # Capacity 3. J1 (2 procs) runs [0, 100). J2 (3 procs) is the head, reserved at 100. J3 (1 proc,
    # asks 200) fits now but would hold a processor past 100: EASY must not start it; J4 (1 proc,
    # asks 50) ends by 100 and is backfilled at 3.
    trace = make_trace(3, (0, 100, 100, 2), (1, 10, 10, 3), (2, 200, 200, 1), (3, 50, 50, 1))
    assert simulate(trace, "easy").starts == (0, 100, 110, 3)


def test_an_unknown_policy_is_named() -> None:
    with pytest.raises(ValueError, match="unknown policy 'fifo'"):
        simulate(SMALL, "fifo")
