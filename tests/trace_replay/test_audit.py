"""The independent audit: clean replays pass, injected violations are caught and named."""

from __future__ import annotations

from dataclasses import replace

from slotbroker.replay.audit import Booking, audit
from slotbroker.replay.hosts import assign
from slotbroker.replay.policies import POLICIES
from slotbroker.replay.simulate import simulate

from .support import EARLY_END, make_trace

BUSY = make_trace(
    4, (0, 50, 60, 2), (5, 30, 40, 3), (6, 10, 20, 1), (7, 70, 90, 4), (8, 5, 5, 1), (9, 40, 80, 2)
)


def test_every_policy_replays_cleanly() -> None:
    for trace in (EARLY_END, BUSY):
        for policy in POLICIES:
            run = simulate(trace, policy)
            bookings, capacity = assign(run)
            report = audit(run.jobs, run.starts, bookings, capacity)
            assert report.violations == 0, (policy, report.examples)


def test_an_overlap_on_one_host_is_caught() -> None:
    run = simulate(make_trace(2, (0, 10, 10, 1), (0, 10, 10, 1)), "easy")
    bookings, capacity = assign(run)
    assert {b.host for b in bookings} == {"h0001", "h0002"}
    assert audit(run.jobs, run.starts, bookings, capacity).violations == 0
    moved = [replace(b, host="h0001") for b in bookings]  # both jobs on one single-core host at once
    report = audit(run.jobs, run.starts, moved, capacity)
    assert report.overbooked == 1
    assert report.violations == 1
    assert report.examples[0] == "host h0001: 2 booked of 1 over [0, 10)"


def test_a_schedule_that_overbooks_the_pool_is_caught_through_the_host_assignment() -> None:
    run = simulate(EARLY_END, "easy")
    squeezed = replace(run, starts=(0, 5, 60))  # job 2 (both processors) starts while job 1 runs
    bookings, capacity = assign(squeezed)
    report = audit(squeezed.jobs, squeezed.starts, bookings, capacity)
    assert report.overbooked >= 1


def test_a_start_before_submit_and_a_wrong_size_are_caught() -> None:
    run = simulate(EARLY_END, "easy")
    bookings, capacity = assign(run)
    early = replace(run, starts=(0, 0, 60))
    shifted = [replace(b, start=0, end=50) if b.job == 2 else b for b in bookings]
    report = audit(early.jobs, early.starts, shifted, capacity)
    assert report.early == 1  # job 2 was submitted at 1
    dropped = [b for b in bookings if not (b.job == 2 and b.host == "h0001")]
    report = audit(run.jobs, run.starts, dropped, capacity)
    assert report.wrong_size == 1  # job 2 asked for 2 processors, holds 1


def test_a_booking_on_an_unknown_host_counts_as_overbooked() -> None:
    run = simulate(make_trace(1, (0, 10, 10, 1)), "easy")
    report = audit(run.jobs, run.starts, [Booking("nowhere", 1, 0, 10)], {"h0001": 1})
    assert report.overbooked == 1
