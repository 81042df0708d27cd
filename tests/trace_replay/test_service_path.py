"""The replay through the real services (bootstrap.build_services on SQLite) against the fast path, the
early end of a lease, and the time-aware ``least_gap`` placement through find-slot."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from slotbroker.domain.errors import ConcurrentUpdate
from slotbroker.domain.time import to_datetime
from slotbroker.replay.audit import audit
from slotbroker.replay.hosts import host_names
from slotbroker.replay.service_path import (
    PROJECT,
    ServiceEasy,
    open_services,
    replay_services,
    service_policy,
)
from slotbroker.replay.simulate import simulate
from slotbroker.replay.trace import Trace
from slotbroker.services.booking.lease_end import end_now
from slotbroker.wire.leases import CreateLease, LeaseItemSpec

from .support import EARLY_END, make_trace

EPOCH = 1_000_000_000


def random_trace(capacity: int, sizes: tuple[int, ...], jobs: int, seed: int) -> Trace:
    rng = random.Random(seed)
    t, rows = 0, []
    for _ in range(jobs):
        t += rng.randint(0, 40)
        req = rng.randint(5, 120)
        rows.append((t, rng.randint(1, req), req, rng.choice(sizes)))
    return make_trace(capacity, *rows, epoch_s=EPOCH)


@pytest.mark.parametrize(
    ("capacity", "sizes", "seed"),
    [
        (1, (1,), 1),  # one host: where a job goes is no question, only when
        (3, (3,), 2),  # every job takes every host
        (4, (1, 2, 4), 3),  # mixed sizes: on this trace least_gap leaves no fragment (not so in general)
    ],
)
def test_the_service_path_takes_the_fast_paths_decisions(
    capacity: int, sizes: tuple[int, ...], seed: int
) -> None:
    trace = random_trace(capacity, sizes, 14, seed)
    fast = simulate(trace, "conservative")
    svc = replay_services(trace, placement="least_gap")
    assert svc.run.starts == fast.starts
    report = audit(svc.run.jobs, svc.run.starts, svc.bookings, dict.fromkeys(host_names(capacity), 1))
    assert report.violations == 0, report.examples


@pytest.mark.parametrize("policy", ["easy", "priority"])
@pytest.mark.parametrize(
    ("capacity", "sizes", "seed"), [(1, (1,), 4), (3, (3,), 5), (4, (1, 2, 4), 6), (6, (1, 2, 3, 6), 7)]
)
def test_easy_through_the_services_takes_the_fast_paths_decisions(
    capacity: int, sizes: tuple[int, ...], seed: int, policy: str
) -> None:
    trace = random_trace(capacity, sizes, 16, seed)
    fast = simulate(trace, policy)
    svc = replay_services(trace, placement="least_gap", policy=policy)
    assert svc.run.starts == fast.starts
    report = audit(svc.run.jobs, svc.run.starts, svc.bookings, dict.fromkeys(host_names(capacity), 1))
    assert report.violations == 0, report.examples


def test_easys_free_capacity_bound_skips_questions_without_changing_an_answer(tmp_path: Path) -> None:
    # a queue long enough that jobs wider than the free processors wait: the bound skips their
    # find-slots, the starts stay the fast path's
    trace = random_trace(6, (1, 2, 3, 6), 30, 8)
    svc, uuids = open_services(trace, tmp_path)
    try:
        policy = service_policy("easy", svc, uuids, trace.epoch_s, "least_gap")
        run = simulate(trace, policy)
    finally:
        svc.close()
    assert run.starts == simulate(trace, "easy").starts
    assert isinstance(policy, ServiceEasy)
    assert policy.skipped > 0


def test_easy_through_the_services_on_the_early_end_trace() -> None:
    # EASY (tests/trace_replay/test_metrics.py): J2 starts when J1 ends at 10, J3 after J2 at 60; the
    # head's reservation leases are cancelled and booked again, so only the final bookings remain.
    svc = replay_services(EARLY_END, policy="easy")
    assert svc.run.starts == (0, 10, 60)
    assert sorted((b.job, b.start, b.end) for b in svc.bookings) == [
        (1, 0, 10),
        (1, 0, 10),
        (2, 10, 60),
        (2, 10, 60),
        (3, 60, 65),
    ]


def test_early_ends_give_the_tail_back_through_the_services() -> None:
    svc = replay_services(EARLY_END)
    # J1 ended at 10 (booked to 100): its lease ends at 10, J2's and J3's reservations stay put
    # (conservative), and the lease rows read back from the database show the real run intervals.
    assert svc.run.starts == (0, 100, 150)
    assert sorted((b.job, b.start, b.end) for b in svc.bookings) == [
        (1, 0, 10),
        (1, 0, 10),
        (2, 100, 150),
        (2, 100, 150),
        (3, 150, 155),
    ]


def test_end_now_keeps_the_past_and_frees_the_rest(tmp_path: Path) -> None:
    trace = make_trace(1, (0, 10, 100, 1), epoch_s=EPOCH)
    svc, uuids = open_services(trace, tmp_path)
    try:
        item = [LeaseItemSpec(provider_uuid=uuids["h0001"], resource_class="VCPU", amount=1)]
        lease = svc.leases.create(
            CreateLease(start=to_datetime(EPOCH), end=to_datetime(EPOCH + 100), items=item),
            project=PROJECT,
            now_s=EPOCH,
        )
        assert lease.status == "ACTIVE"
        end_now(svc.leases, lease.id, now_s=EPOCH + 10)
        ended = svc.leases.get(lease.id, project=None)
        assert ended.status == "ENDED"
        assert ended.end_s == EPOCH + 10
        assert [(int(i.start.timestamp()), int(i.end.timestamp())) for i in ended.items] == [
            (EPOCH, EPOCH + 10)
        ]
        # the freed tail is bookable at once
        again = svc.leases.create(
            CreateLease(start=to_datetime(EPOCH + 10), end=to_datetime(EPOCH + 100), items=item),
            project=PROJECT,
            now_s=EPOCH + 10,
        )
        assert again.status == "ACTIVE"
        with pytest.raises(ConcurrentUpdate):  # an ENDED lease does not end again
            end_now(svc.leases, lease.id, now_s=EPOCH + 20)
    finally:
        svc.close()


def test_least_gap_books_the_host_whose_bookings_the_window_abuts(tmp_path: Path) -> None:
    # h0001 is booked [0, 100), h0002 [200, 300), h0003 nothing. A 100 s job asked for at 100 fits on
    # all three over [100, 200). earliest takes the tightest, then the first row: h0001. least_gap
    # takes h0002, where the window fills the hole [100, 200) exactly (idle 0 before and after).
    trace = make_trace(3, (0, 1, 1, 1), epoch_s=EPOCH)
    svc, uuids = open_services(trace, tmp_path)
    try:
        for host, start, end in (("h0001", 0, 100), ("h0002", 200, 300)):
            svc.leases.create(
                CreateLease(
                    start=to_datetime(EPOCH + start),
                    end=to_datetime(EPOCH + end),
                    items=[LeaseItemSpec(provider_uuid=uuids[host], resource_class="VCPU", amount=1)],
                ),
                project=PROJECT,
                now_s=EPOCH,
            )

        def host_for(policy: str) -> str:
            doc = {
                "components": [{"name": "job", "count": 1, "resources": {"VCPU": 1}}],
                "duration": 100,
                "earliest_start": to_datetime(EPOCH + 100).isoformat(),
                "latest_end": to_datetime(EPOCH + 1000).isoformat(),
                "limit": 1,
                "policy": policy,
            }
            window = svc.find_slot.find(doc, now_s=EPOCH).windows[0]
            assert int(window.start.timestamp()) == EPOCH + 100
            return window.placement["job"][0]

        assert host_for("earliest") == "h0001"
        assert host_for("least_gap") == "h0002"
    finally:
        svc.close()
