"""Compaction (services/booking/lease_compact.py) on real databases: a PENDING lease moves to its earliest
start as if it were gone, never later; a no-op when nothing earlier exists; its own hosts or (allowed)
stand-ins of the same site and traits; stale generations and wrong states refused; a batch in order,
each lease seeing the moves before it; and a hypothesis property against a second-by-second brute force
on a small random calendar, with no overbooking after any move.
"""

from __future__ import annotations

import pytest
from compact_world import NOW, World, at, world_fixture  # noqa: F401 - the fixture w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slotbroker.bootstrap import build_services
from slotbroker.config import Settings
from slotbroker.domain.errors import CapacityConflict, ConcurrentUpdate, NotFound
from slotbroker.services.booking.lease_end import end_now
from slotbroker.wire.leases import (
    CompactLease,
    CompactLeases,
    CreateLease,
    LeaseItemSpec,
    LeaseView,
)


def hosts_of(view: LeaseView) -> list[str]:
    return sorted(it.provider_uuid for it in view.items)


def test_moves_earlier_to_where_capacity_freed(w: World) -> None:
    (h,) = w.site(1)
    blocker = w.lease(h, NOW, NOW + 300, project="other")
    lease = w.lease(h, NOW + 300, NOW + 400)
    w.svc.leases.cancel(blocker.id, project=None, now_s=NOW)
    got = w.compact(lease)
    assert got.moved
    assert got.reason is None
    assert (got.lease.start_s, got.lease.end_s) == (NOW, NOW + 100)
    assert got.previous_start == at(NOW + 300)
    assert got.lease.generation > lease.generation
    assert [e.due for e in got.lease.events if e.kind == "start"] == [at(NOW)]


def test_no_earlier_window_is_a_no_op(w: World) -> None:
    (h,) = w.site(1)
    w.lease(h, NOW, NOW + 300, project="other")
    lease = w.lease(h, NOW + 300, NOW + 400)
    got = w.compact(lease)
    assert not got.moved
    assert got.reason == "no_earlier_window"
    assert got.lease.start_s == NOW + 300
    assert got.lease.generation == lease.generation


def test_never_later_a_lease_due_now_stays(w: World) -> None:
    (h,) = w.site(1)
    lease = w.lease(h, NOW + 10, NOW + 20)
    got = w.compact(lease, now=NOW + 10)
    assert not got.moved
    assert got.reason == "due_now"
    assert got.lease.start_s == NOW + 10


def test_as_if_gone_its_own_rows_do_not_block_it(w: World) -> None:
    """The only earlier window overlaps the lease's own booking: found only with its rows taken out."""
    (h,) = w.site(1)
    w.lease(h, NOW, NOW + 10, project="other")
    lease = w.lease(h, NOW + 50, NOW + 150)
    got = w.compact(lease)
    assert (got.lease.start_s, got.lease.end_s) == (NOW + 10, NOW + 110)


def test_without_swap_only_its_own_hosts(w: World) -> None:
    h1, h2 = w.site(2)
    w.lease(h1, NOW, NOW + 300, project="other")
    lease = w.lease(h1, NOW + 300, NOW + 400)
    stay = w.compact(lease, swap=False)
    assert not stay.moved
    got = w.compact(stay.lease, swap=True)
    assert got.moved
    assert got.lease.start_s == NOW
    assert hosts_of(got.lease) == [h2]


def test_its_own_hosts_when_they_fit_as_early(w: World) -> None:
    """Both hosts free from now: the placement policy alone (earliest: first host by name) would take
    h1; the lease keeps h2, its own, as it fits there just as early."""
    h1, h2 = w.site(2)
    blocker = w.lease(h2, NOW, NOW + 300, project="other")
    lease = w.lease(h2, NOW + 300, NOW + 400)
    w.svc.leases.cancel(blocker.id, project=None, now_s=NOW)
    got = w.compact(lease)
    assert got.lease.start_s == NOW
    assert hosts_of(got.lease) == [h2]
    assert h1 != h2


def test_swap_takes_only_hosts_with_the_same_traits(w: World) -> None:
    h1, _h2, h3 = w.site(3, traits=((), ("HW_CPU_X86_AVX512F",), ()))
    w.lease(h1, NOW, NOW + 300, project="other")
    w.lease(h3, NOW, NOW + 200, project="other")
    lease = w.lease(h1, NOW + 300, NOW + 400)
    got = w.compact(lease)
    # h2 is free now but has another trait; h3 (same traits) frees first
    assert got.lease.start_s == NOW + 200
    assert hosts_of(got.lease) == [h3]


def test_multi_host_lease_moves_whole(w: World) -> None:
    hosts = w.site(3)
    w.lease(hosts[0], NOW, NOW + 50, project="other")
    w.lease(hosts[1], NOW, NOW + 80, project="other")
    lease = w.lease(hosts[:2], NOW + 200, NOW + 300)
    got = w.compact(lease)
    # two hosts free together first at NOW + 50 (hosts 0 and 2), before host 1 frees at 80
    assert got.lease.start_s == NOW + 50
    assert hosts_of(got.lease) == sorted([hosts[0], hosts[2]])


def test_stale_generation_is_refused(w: World) -> None:
    (h,) = w.site(1)
    lease = w.lease(h, NOW + 300, NOW + 400)
    body = CompactLease(generation=lease.generation + 1)
    with pytest.raises(ConcurrentUpdate) as err:
        w.svc.compaction.compact(lease.id, body, project="p", now_s=NOW)
    assert err.value.code == "concurrent_update"
    assert err.value.errors[0].pointer == "/generation"


def test_only_pending_leases_move(w: World) -> None:
    (h,) = w.site(1)
    lease = w.lease(h, NOW, NOW + 400)  # starts now: ACTIVE
    with pytest.raises(ConcurrentUpdate) as err:
        w.compact(lease)
    assert err.value.code == "invalid_state"


def test_other_projects_leases_are_not_found(w: World) -> None:
    (h,) = w.site(1)
    lease = w.lease(h, NOW + 300, NOW + 400)
    with pytest.raises(NotFound):
        w.compact(lease, project="someone-else")


def test_batch_in_start_order_each_sees_the_moves_before_it(w: World) -> None:
    (h,) = w.site(1)
    blocker = w.lease(h, NOW, NOW + 500, project="other")
    a = w.lease(h, NOW + 500, NOW + 600)
    b = w.lease(h, NOW + 600, NOW + 700)
    c = w.lease(h, NOW + 700, NOW + 750)
    w.svc.leases.cancel(blocker.id, project=None, now_s=NOW)
    report = w.svc.compaction.compact_many(CompactLeases(), project="p", now_s=NOW)
    assert [o.lease for o in report.items] == [a.id, b.id, c.id]
    assert report.moved == 3
    assert [int(o.start.timestamp()) for o in report.items if o.start] == [NOW, NOW + 100, NOW + 200]


def test_batch_reports_what_could_not_move(w: World) -> None:
    (h,) = w.site(1)
    active = w.lease(h, NOW, NOW + 100)
    pending = w.lease(h, NOW + 100, NOW + 200)
    body = CompactLeases(leases=[active.id, pending.id, "00000000-0000-0000-0000-000000000000"])
    report = w.svc.compaction.compact_many(body, project="p", now_s=NOW)
    assert [o.reason for o in report.items] == ["not_pending", "no_earlier_window", "not_found"]
    assert report.moved == 0


def test_a_move_proves_capacity_against_what_the_cache_missed(w: World) -> None:
    """Another writer (a second service graph: the first one's cache does not know) takes the room after
    the first graph read its calendar: the move's claim refuses, compaction asks again and stays."""
    (h,) = w.site(1)
    blocker = w.lease(h, NOW, NOW + 300, project="other")
    lease = w.lease(h, NOW + 300, NOW + 400)
    w.svc.leases.cancel(blocker.id, project=None, now_s=NOW)
    w.svc.calendar.current(NOW)  # cached without the blocker
    other = build_services(Settings(database_url=w.svc.db.url, migrate_on_start=False), w.svc.db)
    other.leases.create(
        CreateLease(
            start=at(NOW),
            end=at(NOW + 300),
            items=[LeaseItemSpec(provider_uuid=h, resource_class="VCPU", amount=1)],
        ),
        project="other",
        now_s=NOW,
    )
    got = w.compact(lease)
    assert not got.moved
    assert got.lease.start_s == NOW + 300


# -- the property: exact against a brute force, and never overbooked ----------------------------------------

CAP = 2
SPAN = 60  # every booking lies in [NOW, NOW + SPAN + 30)


def usage(leases: list[tuple[str, int, int, int]], host: str, t: int) -> int:
    return sum(a for h, s, e, a in leases if h == host and s <= t < e)


def brute_earliest(
    others: list[tuple[str, int, int, int]],
    hosts: list[str],
    own: str,
    amount: int,
    start: int,
    dur: int,
    swap: bool,
) -> int | None:
    """The earliest t in [NOW, start) where ``amount`` fits for [t, t + dur) on one host (its own, or any
    with ``swap``), counted second by second."""
    for t in range(NOW, start):
        for h in hosts if swap else [own]:
            if all(usage(others, h, x) + amount <= CAP for x in range(t, t + dur)):
                return t
    return None


bookings = st.lists(
    st.tuples(st.integers(0, 1), st.integers(0, SPAN), st.integers(5, 30), st.integers(1, CAP)), max_size=10
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=bookings,
    target=st.tuples(st.integers(0, 1), st.integers(1, SPAN), st.integers(5, 30), st.integers(1, CAP)),
    ends=st.lists(st.integers(0, 30), max_size=3),
    swap=st.booleans(),
)
def test_compaction_matches_brute_force(
    w: World,
    data: list[tuple[int, int, int, int]],
    target: tuple[int, int, int, int],
    ends: list[int],
    swap: bool,
) -> None:
    hosts = w.site(2, vcpu=CAP)
    booked: dict[str, tuple[str, int, int, int]] = {}
    for hi, s, d, a in data:
        try:
            v = w.lease(hosts[hi], NOW + s, NOW + s + d, a, project="other")
        except CapacityConflict:
            continue
        booked[v.id] = (hosts[hi], NOW + s, NOW + s + d, a)
    # some end early (or are cancelled): capacity frees before the target's start
    for i in ends:
        if booked:
            lease_id = sorted(booked)[i % len(booked)]
            w.svc.leases.cancel(lease_id, project=None, now_s=NOW)
            del booked[lease_id]
    hi, s, d, a = target
    try:
        lease = w.lease(hosts[hi], NOW + s, NOW + s + d, a)
    except CapacityConflict:
        return
    got = w.compact(lease, swap=swap)
    want = brute_earliest(list(booked.values()), hosts, hosts[hi], a, NOW + s, d, swap)
    assert got.lease.start_s == (NOW + s if want is None else want)
    assert got.lease.end_s - got.lease.start_s == d
    assert got.moved == (want is not None)
    everything = [
        *booked.values(),
        *((it.provider_uuid, got.lease.start_s, got.lease.end_s, it.amount) for it in got.lease.items),
    ]
    for h in hosts:
        assert all(usage(everything, h, t) <= CAP for t in range(NOW, NOW + SPAN + 60))


def test_early_end_then_compaction_through_the_services(w: World) -> None:
    """The replay's use: an ACTIVE lease ends early, the next one moves into the freed time."""
    (h,) = w.site(1)
    running = w.lease(h, NOW, NOW + 100)
    queued = w.lease(h, NOW + 100, NOW + 200)
    end_now(w.svc.leases, running.id, now_s=NOW + 40)
    got = w.compact(queued, now=NOW + 40)
    assert (got.lease.start_s, got.lease.end_s) == (NOW + 40, NOW + 140)
