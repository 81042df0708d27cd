"""CalendarIndex batch updates, shortening and forgetting the past answer, at and after the drop point,
as an index built fresh from the bookings left (clipped to start at the drop point)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from slotbroker.domain.vlans import VlanSet
from slotbroker.engine import (
    AllocationSnap,
    AllocationTable,
    CalendarIndex,
    HostSnap,
    InventorySnap,
    LinkSnap,
    PortSnap,
    SiteSnap,
    Snapshot,
)
from slotbroker.engine.steps import StepTable

M = 60
HOSTS = (
    HostSnap(1, "h1", "A", inventories={"VCPU": InventorySnap(8)}),
    HostSnap(2, "h2", "A", inventories={"VCPU": InventorySnap(8)}),
    HostSnap(3, "h3", "B", inventories={"VCPU": InventorySnap(4)}),
)
SITES = (SiteSnap("A"), SiteSnap("B"))
LINKS = (LinkSnap(10, "AB", "A", "B", 10, 1.0),)
PORTS = (PortSnap(20, "A", "fp", VlanSet.parse("100-102"), 10),)


def snap(allocs: list[AllocationSnap]) -> Snapshot:
    return Snapshot(HOSTS, SITES, LINKS, PORTS, AllocationTable.from_rows(allocs))


def _alloc(p: int, a: int, s: int, d: int, tag: int | None) -> AllocationSnap:
    cls = {10: "BANDWIDTH_GBPS", 20: "VLAN" if tag != 0 else "BANDWIDTH_GBPS"}.get(p, "VCPU")
    vlan = tag if cls == "VLAN" and tag in (100, 101) else None
    return AllocationSnap(p, cls, a, s * M, (s + d) * M, vlan)


allocs_st = st.lists(
    st.builds(
        _alloc,
        st.sampled_from([1, 2, 3, 10, 20]),
        st.integers(1, 6),  # h3 holds 4: bookings may overbook it (the site bound must say so)
        st.integers(0, 100),
        st.integers(1, 50),
        st.sampled_from([None, 0, 100, 101]),
    ),
    max_size=8,
)
op = st.one_of(
    st.tuples(st.just("add"), allocs_st),
    st.tuples(st.just("add_many"), allocs_st),
    st.tuples(st.just("remove_many"), st.lists(st.integers(0, 99), max_size=4)),
    st.tuples(st.just("update_many"), st.tuples(allocs_st, st.lists(st.integers(0, 99), max_size=4))),
    st.tuples(st.just("shorten"), st.tuples(st.integers(0, 99), st.integers(0, 60))),
    st.tuples(st.just("drop_past"), st.integers(0, 25)),
)


def probe(index: CalendarIndex, drop: int) -> list[Any]:
    hosts, sites, one = np.arange(3, dtype=np.int64), np.arange(2, dtype=np.int64), np.zeros(1, np.int64)
    out: list[Any] = []
    for s in range(drop * M, 170 * M, 11 * M):
        for d in (M, 13 * M, 40 * M):
            e = s + d
            out += [index.host_free("VCPU", hosts, s, e).tolist(), index.site_free_bound("VCPU", sites, s, e)]
            out += [index.link_free(one, s, e).tolist(), index.port_bw_free(0, s, e)]
            out += [index.untagged_vlans(0, s, e), index.tags_in_use(0, s, e)]
            out += [index.tag_blocked_until(0, tag, s, e) for tag in (100, 101)]
        table = index.host.get("VCPU") or StepTable(3)  # (a fresh index has none without bookings)
        out.append(table.next_decrease(hosts, s))
        out.append(table.earliest_fits(hosts, np.full(3, s), 9 * M, np.full(3, 3), 170 * M).tolist())
    return [x.tolist() if isinstance(x, np.ndarray) else x for x in out]


@settings(max_examples=80, deadline=None)
@given(base=allocs_st, ops=st.lists(op, max_size=6))
# a booking added after the drop point that had already ended there: shortening it is a no-op
@example(base=[], ops=[("drop_past", 2), ("add", [AllocationSnap(1, "VCPU", 1, 0, 60)]), ("shorten", (0, 0))])
def test_any_sequence_answers_as_a_fresh_index(
    base: list[AllocationSnap], ops: list[tuple[str, Any]]
) -> None:
    index = CalendarIndex(snap(base))
    live = list(base)
    drop = 0
    for name, arg in ops:
        if name == "add":
            for a in arg:
                index.add(a)
            live += arg
        elif name == "add_many":
            index.add_many(arg)
            live += arg
        elif name == "remove_many" and live:
            picks = sorted({i % len(live) for i in arg})
            index.remove_many([live[i] for i in picks])
            live = [a for i, a in enumerate(live) if i not in picks]
        elif name == "update_many":
            added, picks_at = arg
            live += added  # what the batch adds it may remove too (a VLAN tag included)
            picks = sorted({i % len(live) for i in picks_at}) if live else []
            index.update_many(added, [live[i] for i in picks])
            live = [a for i, a in enumerate(live) if i not in picks]
        elif name == "shorten" and live:
            i, cut = arg
            a = live[i % len(live)]
            new_end = min(a.end_s, max(drop * M, a.end_s - cut * M))  # never a lengthening
            index.shorten(a, new_end)
            live[i % len(live)] = replace(a, end_s=new_end)
            live = [x for x in live if x.end_s > x.start_s]
        elif name == "drop_past":
            drop += arg
            index.drop_past(drop * M)
            live = [a for a in live if a.end_s > drop * M]
    left = [replace(a, start_s=max(a.start_s, drop * M)) for a in live if a.end_s > drop * M]
    assert probe(index, drop) == probe(CalendarIndex(snap(left)), drop)


def test_a_bad_batch_changes_nothing() -> None:
    """The batch is checked whole before any table changes: a class the provider cannot hold, or a
    concrete VLAN tag that is not booked, leaves the index as it was."""
    good = AllocationSnap(1, "VCPU", 2, 0, 600)
    index = CalendarIndex(snap([good]))
    before = probe(index, 0)
    with pytest.raises(ValueError, match="cannot be allocated"):
        index.add_many([AllocationSnap(2, "VCPU", 1, 0, 60), AllocationSnap(10, "VCPU", 1, 0, 60)])
    with pytest.raises(KeyError, match="no such VLAN"):
        index.remove_many([good, AllocationSnap(20, "VLAN", 1, 0, 60, 100)])
    with pytest.raises(KeyError, match="no such VLAN"):  # the adds of a failing update stay out too
        index.update_many([AllocationSnap(2, "VCPU", 1, 0, 60)], [AllocationSnap(20, "VLAN", 1, 0, 60, 101)])
    assert probe(index, 0) == before


def test_update_many_equals_add_many_then_remove_many() -> None:
    """One batch for both, the same step functions, bounds and tags as the two calls in turn."""
    base = [AllocationSnap(1, "VCPU", 2, 0, 600), AllocationSnap(3, "VCPU", 3, 60, 900)]
    added = [AllocationSnap(1, "VCPU", 2, 60, 660), AllocationSnap(20, "VLAN", 1, 0, 60, 100)]
    removed = [base[0], AllocationSnap(20, "VLAN", 1, 0, 60, 100), base[1]]
    one, two = CalendarIndex(snap(base)), CalendarIndex(snap(base))
    one.update_many(added, removed)
    two.add_many(added)
    two.remove_many(removed)
    assert probe(one, 0) == probe(two, 0) == probe(CalendarIndex(snap([added[0]])), 0)


def test_an_overbooking_in_the_dropped_past_no_longer_loosens_the_site_bound() -> None:
    """h3 (4 cores) overbooked before ``now`` only: once that past is dropped its site's bound is the
    plain sum again, as in a fresh index."""
    over = AllocationSnap(3, "VCPU", 6, 0, 10 * M)
    later = AllocationSnap(3, "VCPU", 1, 20 * M, 30 * M)
    index = CalendarIndex(snap([over, later]))
    b = np.array([1], dtype=np.int64)
    assert index.site_free_bound("VCPU", b, 20 * M, 30 * M).tolist() == [np.iinfo(np.int64).max]
    index.drop_past(10 * M)
    assert index.site_free_bound("VCPU", b, 20 * M, 30 * M).tolist() == [3]
    assert probe(index, 10) == probe(CalendarIndex(snap([later])), 10)


def test_removing_an_unbooked_vlan_tag_leaves_the_port_count() -> None:
    """Regression: the tag check ran after the port's VLAN count had been lowered."""
    booked = AllocationSnap(20, "VLAN", 1, 0, 600, 100)
    index = CalendarIndex(snap([booked]))
    with pytest.raises(KeyError, match="no such VLAN"):
        index.remove(AllocationSnap(20, "VLAN", 1, 0, 600, 101))
    assert index.port_vlans.peak(np.zeros(1, np.int64), 0, 600).tolist() == [1]
