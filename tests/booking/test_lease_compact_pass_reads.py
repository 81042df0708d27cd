"""A compaction pass's leases read at once (services/booking/lease_compact_reads.py, decision 0052), on
SQLite and PostgreSQL: the batch read gives what the single read gives; the reads are kept across the
pass's own moves (no read again) and given up when another writer commits; and a hypothesis property
holds a pass with the batch reads equal to the plain one-lease-at-a-time pass on the same calendar.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from compact_world import NOW, World, at, world_fixture  # noqa: F401 - the fixture w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slotbroker.bootstrap import build_services
from slotbroker.config import Settings
from slotbroker.domain.errors import CapacityConflict
from slotbroker.services.booking import lease_compact_reads
from slotbroker.services.booking.lease_compact_reads import PassReads, read_pass
from slotbroker.wire.leases import (
    CompactionReport,
    CompactLeases,
    UpdateLease,
)


def compact_pass(w: World, ids: list[str], batch: bool = True) -> CompactionReport:
    """``compact_many`` of ``ids`` at NOW, with the pass's batch reads on (as served) or off (the plain
    one-lease-at-a-time reads, the reference)."""
    compactor = w.svc.compaction
    compactor.batch_reads = batch
    try:
        return compactor.compact_many(CompactLeases(leases=ids), project="p", now_s=NOW)
    finally:
        compactor.batch_reads = True


def plain_reads(w: World, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every lease the compactor reads alone from now on (its plain ``read``)."""
    seen: list[str] = []
    plain = w.svc.compaction.read

    def read(lease_id: str, project: str | None) -> Any:
        seen.append(lease_id)
        return plain(lease_id, project)

    monkeypatch.setattr(w.svc.compaction, "read", read)
    return seen


def test_the_batch_read_is_the_single_read(w: World) -> None:
    a, b = w.site(2, vcpu=4)
    leases = [
        w.lease(a, NOW + 100, NOW + 200),
        w.lease([a, b], NOW + 150, NOW + 400, amount=2),
        w.lease(b, NOW, NOW + 50),  # ACTIVE
        w.lease(b, NOW + 500, NOW + 600, project="other"),
    ]
    w.svc.leases.cancel(leases[0].id, project=None, now_s=NOW)  # rows gone, status CANCELLED
    ids = [v.id for v in leases] + ["00000000-0000-0000-0000-000000000000", leases[1].id]
    for project in ("p", "other", None):
        batch = read_pass(w.svc.db, ids, project)
        assert list(batch) == list(dict.fromkeys(ids))
        for lease_id in ids:
            one = w.svc.compaction.read(lease_id, project)
            got = batch[lease_id]
            assert (got is None) == (one is None)
            if got is not None and one is not None:
                assert dataclasses.replace(got, rows=()) == dataclasses.replace(one, rows=())
                assert [tuple(r)[:9] for r in got.rows] == [tuple(r) for r in one.rows]
                assert got.vectors == one.vectors
                assert got.hosts_only == one.hosts_only


def test_reads_are_kept_across_the_pass_own_moves(w: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three leases each move into the time the one before freed: no lease is read again."""
    (h,) = w.site(1)
    blocker = w.lease(h, NOW, NOW + 500, project="other")
    a = w.lease(h, NOW + 500, NOW + 600)
    b = w.lease(h, NOW + 600, NOW + 700)
    c = w.lease(h, NOW + 700, NOW + 750)
    w.svc.leases.cancel(blocker.id, project=None, now_s=NOW)
    seen = plain_reads(w, monkeypatch)
    batches: list[int] = []
    taken = lease_compact_reads.read_pass

    def counted(*args: Any) -> Any:
        batches.append(1)
        return taken(*args)

    monkeypatch.setattr(lease_compact_reads, "read_pass", counted)
    report = compact_pass(w, [a.id, b.id, c.id])
    assert [int(o.start.timestamp()) for o in report.items if o.start] == [NOW, NOW + 100, NOW + 200]
    assert seen == []
    assert len(batches) == 1


def test_another_writers_commit_takes_the_reads_again(w: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Between two examinations another writer moves a lease of the batch: the kept read of it no longer
    matches the calendar; the pass reads the rest again and compacts it from where it now is."""
    (h, g) = w.site(2)
    blocker = w.lease(h, NOW, NOW + 300, project="other")
    a = w.lease(h, NOW + 300, NOW + 400)
    b = w.lease(g, NOW + 600, NOW + 700)
    w.svc.leases.cancel(blocker.id, project=None, now_s=NOW)
    other = build_services(Settings(database_url=w.svc.db.url, migrate_on_start=False), w.svc.db)
    refreshes: list[int] = []
    taken = lease_compact_reads.read_pass

    def read_pass_then_move_b(*args: Any) -> Any:
        out = taken(*args)
        if not refreshes:  # once, after the pass's first read: b moves to [+450, +550)
            got = other.leases.get(b.id, project="p")
            other.leases.update(
                b.id,
                UpdateLease(generation=got.generation, start=at(NOW + 450), end=at(NOW + 550)),
                project="p",
                now_s=NOW,
            )
        refreshes.append(1)
        return out

    monkeypatch.setattr(lease_compact_reads, "read_pass", read_pass_then_move_b)
    report = compact_pass(w, [a.id, b.id])
    assert len(refreshes) == 2  # the pass's read, then once more after the other writer's commit
    assert [int(o.start.timestamp()) for o in report.items if o.start] == [NOW, NOW]
    assert report.items[1].previous_start == at(NOW + 450)  # as the other writer left it
    other.find_slot.shutdown()


def test_pass_reads_validity(w: World) -> None:
    """``valid``: a kept read at its generation plus the pass's own bumps; another commit makes it stale."""
    (h,) = w.site(1, vcpu=2)
    a = w.lease(h, NOW + 100, NOW + 200)
    b = w.lease(h, NOW + 300, NOW + 400)
    reads = PassReads(w.svc.db, "p", lambda i: w.svc.compaction.read(i, "p"), [a.id, b.id], True)
    ra, rb = reads.get(a.id), reads.get(b.id)
    assert ra is not None
    assert rb is not None
    assert reads.kept(ra)
    assert reads.kept(rb)
    assert reads.valid(rb, w.svc.calendar.current(NOW).generation)
    w.lease(h, NOW, NOW + 50, project="other")  # somebody else's commit
    assert not reads.valid(rb, w.svc.calendar.current(NOW).generation)
    reads.refresh()
    rb2 = reads.get(b.id)
    assert rb2 is not None
    assert rb2 is not rb
    assert reads.valid(rb2, w.svc.calendar.current(NOW).generation)


# -- the property: the batch pass is the plain pass --------------------------------------------------------

CAP = 2
SPAN = 60

bookings = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, SPAN), st.integers(5, 30), st.integers(1, CAP)), max_size=8
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    others=bookings,
    mine=st.lists(
        st.tuples(st.integers(0, 2), st.integers(1, SPAN), st.integers(5, 30), st.integers(1, CAP)),
        min_size=1,
        max_size=6,
    ),
    ends=st.lists(st.integers(0, 30), max_size=3),
)
def test_the_batch_pass_is_the_plain_pass(
    w: World,
    others: list[tuple[int, int, int, int]],
    mine: list[tuple[int, int, int, int]],
    ends: list[int],
) -> None:
    """Two sites built alike (swap stays within a site, so they are two independent calendars): the
    same pass, batch reads on one and plain reads on the other, gives the same outcomes."""
    outcomes = []
    for batch in (True, False):
        hosts = w.site(3, vcpu=CAP)
        booked: list[str] = []
        for hi, s, d, a in others:
            try:
                booked.append(w.lease(hosts[hi], NOW + s, NOW + s + d, a, project="other").id)
            except CapacityConflict:
                booked.append("")
        ids: list[str] = []
        for hi, s, d, a in mine:
            try:
                ids.append(w.lease(hosts[hi], NOW + s, NOW + s + d, a).id)
            except CapacityConflict:
                continue
        live = [b for b in booked if b]
        for i in ends:
            if live:
                w.svc.leases.cancel(live.pop(i % len(live)), project=None, now_s=NOW)
        if not ids:
            return
        report = compact_pass(w, ids, batch=batch)
        row = {h: i for i, h in enumerate(hosts)}
        outcomes.append(
            [
                (
                    o.moved,
                    o.reason,
                    o.start,
                    sorted(row[it.provider_uuid] for it in w.svc.leases.get(o.lease, project="p").items),
                )
                for o in report.items
            ]
        )
    assert outcomes[0] == outcomes[1]


def test_one_generation_read_serves_examinations_until_a_move(w: World) -> None:
    """Leases that cannot move share the pass's first generation read; a move makes the next one read
    anew (the cache replays the move's report against it)."""
    (h,) = w.site(1)
    w.lease(h, NOW, NOW + 500, project="other")
    stuck = [w.lease(h, NOW + 500 + 100 * i, NOW + 600 + 100 * i) for i in range(3)]
    w.svc.calendar.current(NOW)
    reads = w.svc.calendar._reads
    before = reads.reads
    report = compact_pass(w, [v.id for v in stuck])
    assert report.moved == 0
    assert reads.reads - before == 1
    (g,) = w.site(1)
    movers = [w.lease(g, NOW + 100, NOW + 200), w.lease(g, NOW + 300, NOW + 400)]
    w.svc.calendar.current(NOW)
    before = reads.reads
    report = compact_pass(w, [movers[0].id, stuck[0].id, movers[1].id, stuck[1].id])
    assert report.moved == 2
    assert reads.reads - before == 3  # the pass's first, then one after each move
