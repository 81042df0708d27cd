"""``calendar_cache.apply_changes`` merges the rows it rewrote into each table's flat arrays
(``compact``): after any sequence of replayed batches the index answers as one built fresh from the
rows left, and no table is left answering row by row."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
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
from slotbroker.services.find_slot.calendar_cache import apply_changes

M = 60
HOSTS = tuple(HostSnap(i, f"h{i}", "AB"[i % 2], inventories={"VCPU": InventorySnap(8)}) for i in range(1, 7))
SITES = (SiteSnap("A"), SiteSnap("B"))
LINKS = (LinkSnap(10, "AB", "A", "B", 10, 1.0),)
PORTS = (PortSnap(20, "A", "fp", VlanSet.parse("100-102"), 10),)


def snap(allocs: list[AllocationSnap]) -> Snapshot:
    return Snapshot(HOSTS, SITES, LINKS, PORTS, AllocationTable.from_rows(allocs))


def _alloc(p: int, a: int, s: int, d: int) -> AllocationSnap:
    return AllocationSnap(p, "BANDWIDTH_GBPS" if p in (10, 20) else "VCPU", a, s * M, (s + d) * M)


allocs_st = st.lists(
    st.builds(_alloc, st.sampled_from([1, 2, 3, 4, 5, 6, 10, 20]), st.integers(1, 5), st.integers(0, 100),
              st.integers(1, 50)),
    max_size=10,
)  # fmt: skip


def merged(spans: tuple[Any, Any, Any]) -> list[tuple[int, int, int]]:
    """``blocked_spans``' answer as each row's blocked time: its contract leaves adjacent spans unmerged,
    so a table holding a redundant step (one row ending where another of the same level starts) and
    one without it give different lists for the same usage."""
    out: list[tuple[int, int, int]] = []
    for i, a, b in zip(*(x.tolist() for x in spans), strict=True):
        if out and out[-1][0] == i and out[-1][2] == a:
            out[-1] = (i, out[-1][1], b)
        else:
            out.append((i, a, b))
    return out


def probe(index: CalendarIndex) -> list[Any]:
    hosts, sites, one = np.arange(6, dtype=np.int64), np.arange(2, dtype=np.int64), np.zeros(1, np.int64)
    table = index.host.get("VCPU") or StepTable(6)
    out: list[Any] = []
    for s in range(0, 170 * M, 13 * M):
        for e in (s + M, s + 40 * M):
            out += [index.host_free("VCPU", hosts, s, e), index.site_free_bound("VCPU", sites, s, e)]
            out += [index.link_free(one, s, e), index.port_bw_free(0, s, e)]
            out.append(merged(table.blocked_spans(hosts, s, e, np.full(6, 4))))
        out.append(table.next_decrease(hosts, s))
        out.append(table.earliest_fits(hosts, np.full(6, s), 9 * M, np.full(6, 3), 170 * M))
    return [x.tolist() if isinstance(x, np.ndarray) else x for x in out]


batch_st = st.tuples(allocs_st, st.lists(st.integers(0, 99), max_size=5))  # rows added, rows removed


@settings(max_examples=60, deadline=None)
@given(
    base=allocs_st,
    batches=st.lists(st.tuples(allocs_st, st.lists(st.integers(0, 99), max_size=5)), max_size=6),
)
def test_replayed_batches_answer_as_a_fresh_index(
    base: list[AllocationSnap], batches: list[tuple[list[AllocationSnap], list[int]]]
) -> None:
    index = CalendarIndex(snap(base))
    live = list(base)
    for added, picks in batches:
        gone = sorted({i % len(live) for i in picks}) if live else []
        apply_changes(index, added, [live[i] for i in gone])
        live = [a for i, a in enumerate(live) if i not in gone] + added
        assert probe(index) == probe(CalendarIndex(snap(live)))
        assert all(not table._dirty for table in index._tables())  # nothing left to answer row by row
