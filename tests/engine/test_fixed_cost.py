"""The per-request fast paths of issue 18 against plain references: each must answer exactly as the
plain computation it replaces (host fits, the selector's sites per component, runs of dirty blocks,
the selector's route shortcut, exact packing)."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slotbroker.domain.request import parse_request
from slotbroker.engine import (
    AllocationSnap,
    CalendarIndex,
    HostSnap,
    InventorySnap,
    LinkSnap,
    SiteSnap,
    Snapshot,
    find_slots,
)
from slotbroker.engine.packing import Item, pack
from slotbroker.engine.plan import compile_plan
from slotbroker.engine.routing import candidate_paths
from slotbroker.engine.snapshot import AllocationTable
from slotbroker.engine.stages.free_starts import _dirty_runs
from slotbroker.engine.stages.host_fit import host_free, instances_fit_cols, usable_cols
from slotbroker.engine.stages.select import Choice, Selector, out_of_reach
from slotbroker.engine.stages.site_summary import candidate_sites

from .strategies import T0, H, iso, requests, worlds

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _starts(plan_start: int, latest: int) -> list[int]:
    return list(range(plan_start, latest + 1, H // 2))[:16]


@SETTINGS
@given(data=st.data(), snap=worlds())
def test_selector_matches_plain_fits_rooms_and_hosts(data: st.DataObject, snap: Snapshot) -> None:
    """Per component: candidate sites, their room and their hosts as a plain per-host loop finds them."""
    req = data.draw(requests(snap))
    index = CalendarIndex(snap)
    plan = compile_plan(req, index)
    topo = index.topo
    for s in _starts(plan.range_start, plan.latest_start):
        e = s + plan.min_duration
        sites, rej = candidate_sites(index, plan, s, e)
        if rej is not None:
            continue
        sel = Selector(index, plan, s, e, sites)
        free = host_free(index, plan, plan.rows(), s, e)
        for c in plan.comps:
            fit: dict[int, int] = {}  # host row -> instances it could hold alone
            for i, row in enumerate(plan.rows().tolist()):
                if row in c.hosts.tolist():
                    need = [(int(f), int(d)) for f, d in zip(free[i], c.demand, strict=True) if d > 0]
                    fit[row] = min((max(f, 0) // d for f, d in need), default=c.count)
            room: dict[int, int] = {}
            for row, n in fit.items():
                site = int(topo.host_site[row])
                room[site] = room.get(site, 0) + n
            want = sorted(st_ for st_, n in room.items() if n >= c.count and st_ in sites[c.idx].tolist())
            got = sel.local[c.idx]
            assert got.sites.tolist() == want
            assert got.room.tolist() == [room[x] for x in want]
            for site in want:
                hosts = sorted(r for r, n in fit.items() if n > 0 and int(topo.host_site[r]) == site)
                assert plan.rows()[got[site]].tolist() == hosts


@settings(max_examples=200, deadline=None)
@given(
    free=st.lists(st.lists(st.integers(-5, 40), min_size=3, max_size=3), min_size=1, max_size=8),
    demand=st.lists(st.integers(0, 7), min_size=3, max_size=3),
    count=st.integers(1, 4),
)
def test_instances_fit_from_columns_equals_per_host(
    free: list[list[int]], demand: list[int], count: int
) -> None:
    from slotbroker.engine.plan import CompPlan

    comp = CompPlan(0, "c", count, np.array(demand, np.int64), (), np.zeros(0, np.int64), ())
    m = np.array(free, np.int64)
    want = [
        min((max(f, 0) // d for f, d in zip(row, demand, strict=True) if d > 0), default=count)
        for row in free
    ]
    cols = [np.ascontiguousarray(m[:, k]) for k in range(3)]
    assert instances_fit_cols(usable_cols(cols), len(free), comp).tolist() == want


@settings(max_examples=200, deadline=None)
@given(
    grid=st.lists(st.lists(st.booleans(), min_size=1, max_size=9), min_size=1, max_size=6).filter(
        lambda g: len({len(r) for r in g}) == 1
    )
)
def test_dirty_runs_equal_a_scan(grid: list[list[bool]]) -> None:
    dirty = np.array(grid, dtype=bool).T  # (blocks, rows), as ``dirty_blocks`` gives it
    want = []
    for r, row in enumerate(grid):
        for on, run in itertools.groupby(enumerate(row), key=lambda x: x[1]):
            if on:
                blocks = [b for b, _ in run]
                want.append((r, blocks[0], blocks[-1] + 1))
    o, a, b = _dirty_runs(dirty)
    assert list(zip(o.tolist(), a.tolist(), b.tolist(), strict=True)) == want


@SETTINGS
@given(data=st.data(), snap=worlds())
def test_route_shortcut_changes_no_answer(data: st.DataObject, snap: Snapshot) -> None:
    """The selector with its route shortcut answers exactly as without it: the same choice, or the
    same rejection (reason and component)."""
    req = data.draw(requests(snap))
    index = CalendarIndex(snap)
    plan = compile_plan(req, index)
    for s in _starts(plan.range_start, plan.latest_start):
        e = s + plan.min_duration
        sites, rej = candidate_sites(index, plan, s, e)
        if rej is not None:
            continue
        assert (
            Selector(index, plan, s, e, sites).run()
            == Selector(index, plan, s, e, sites, shortcut=False).run()
        )


@SETTINGS
@given(snap=worlds(), bound=st.sampled_from([None, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 12.0, 20.0]))
def test_out_of_reach_only_where_no_path_exists(snap: Snapshot, bound: float | None) -> None:
    """The shortcut's test never passes over a pair of sites that some path joins within the bound."""
    topo = CalendarIndex(snap).topo
    n = len(topo.sites)
    for src, dst in itertools.product(range(n), repeat=2):
        paths = candidate_paths(topo, src, dst, 0, lambda _link: 1 << 40, bound)
        if out_of_reach(topo, src, dst, bound):
            assert paths == []
        elif src != dst and bound is not None and float(topo.latency[src, dst]) <= bound:
            assert paths  # the lowest-latency path qualifies (no bandwidth asked)


def _two_far_sites() -> CalendarIndex:
    inv = {"VCPU": InventorySnap(4)}
    hosts = (
        HostSnap(1, "a0", "A", inventories=inv),
        HostSnap(2, "b0", "B", inventories=inv),
        HostSnap(3, "b1", "B", inventories=inv),
    )
    link = LinkSnap(100, "AB", "A", "B", 10, 50.0)  # 50 ms: beyond a 10 ms bound
    return CalendarIndex(
        Snapshot(hosts, (SiteSnap("A"), SiteSnap("B")), (link,), (), AllocationTable.from_rows([]))
    )


def _linked(max_latency: float, x_site: str | None = None) -> dict[str, object]:
    x: dict[str, object] = {"name": "x", "resources": {"VCPU": 4}}
    if x_site:
        x["site"] = x_site
    return {
        "components": [x, {"name": "y", "count": 2, "resources": {"VCPU": 4}}],
        "links": [{"a": "x", "b": "y", "bandwidth_gbps": 1, "max_latency_ms": max_latency}],
        "earliest_start": iso(T0),
        "latest_end": iso(T0 + 4 * H),
        "duration": H,
        "policy": "first_fit",
    }


def test_route_shortcut_passes_over_a_site_and_keeps_the_answer() -> None:
    """x must sit at A (its only host there), y needs both hosts of B: the link is 50 ms, so a 10 ms
    bound fails at B. Both searches reject with the same reason; the shortcut passed over the site."""
    index = _two_far_sites()
    plan = compile_plan(parse_request(_linked(10.0, "A")), index)
    s, e = plan.range_start, plan.range_start + plan.min_duration
    sites, rej = candidate_sites(index, plan, s, e)
    assert rej is None
    fast = Selector(index, plan, s, e, sites)
    got = fast.run()
    assert fast.cut  # the shortcut fired
    assert got == Selector(index, plan, s, e, sites, shortcut=False).run()
    assert not isinstance(got, Choice)
    # within the bound the same request places, with and without the shortcut
    plan = compile_plan(parse_request(_linked(60.0, "A")), index)
    ok = Selector(index, plan, s, e, sites).run()
    assert isinstance(ok, Choice)
    assert ok == Selector(index, plan, s, e, sites, shortcut=False).run()


def _brute_pack(items: list[Item], free: np.ndarray) -> bool:
    seq = [it for it in items for _ in range(it.count)]
    hosts = range(free.shape[0])
    for assign in itertools.product(hosts, repeat=len(seq)):
        left = free.copy()
        ok = True
        for it, h in zip(seq, assign, strict=True):
            if not it.eligible[h]:
                ok = False
                break
            left[h] -= it.demand
        if ok and (left >= 0).all():
            return True
    return False


@settings(max_examples=200, deadline=None)
@given(
    free=st.lists(st.lists(st.integers(0, 6), min_size=2, max_size=2), min_size=1, max_size=3),
    specs=st.lists(
        st.tuples(st.integers(1, 2), st.lists(st.integers(0, 3), min_size=2, max_size=2)),
        min_size=1,
        max_size=2,
    ),
    data=st.data(),
)
def test_exact_packing_finds_a_packing_whenever_one_exists(
    free: list[list[int]], specs: list[tuple[int, list[int]]], data: st.DataObject
) -> None:
    f = np.array(free, np.int64)
    items = [
        Item(
            k,
            count,
            np.array(dem, np.int64),
            np.array(data.draw(st.lists(st.booleans(), min_size=len(free), max_size=len(free))), dtype=bool),
        )
        for k, (count, dem) in enumerate(specs)
    ]
    got = pack(items, f, list(range(len(free))), exact=True)
    assert (got is not None) == _brute_pack(items, f)
    if got is not None:
        left = f.copy()
        for it in items:
            assert len(got[it.comp]) == it.count
            for h in got[it.comp]:
                assert it.eligible[h]
                left[h] -= it.demand
        assert (left >= 0).all()


def test_requests_of_one_shape_share_no_count_dependent_cache() -> None:
    """Plans with the same classes and eligible hosts share their time-free arrays; what depends on a
    component's count (its reach's per-host instance counts) must not leak from one request to the
    next: a warm index answers as a fresh one."""
    inv = {"VCPU": InventorySnap(8)}  # room for two instances of 4 cores each
    hosts = tuple(HostSnap(i + 1, f"h{i}", "A", inventories=inv) for i in range(3))
    busy = [AllocationSnap(i + 1, "VCPU", 8, T0, T0 + end * H) for i, end in enumerate((5, 9, 12))]
    world = Snapshot(hosts, (SiteSnap("A"),), (), (), AllocationTable.from_rows(busy))

    def req(count: int) -> dict[str, object]:
        return {
            "components": [{"name": "w", "count": count, "resources": {"VCPU": 4}}],
            "earliest_start": iso(T0),
            "latest_end": iso(T0 + 20 * H),
            "duration": 2 * H,
        }

    warm = CalendarIndex(world)
    for count in (1, 3, 2, 3, 1):
        got = find_slots(warm, parse_request(req(count)), explain=False)
        want = find_slots(CalendarIndex(world), parse_request(req(count)), explain=False)
        assert [w.start for w in got.windows] == [w.start for w in want.windows], count
    # two instances fit on h0 alone once it is free (5 h): no need to wait for a second host
    assert find_slots(warm, parse_request(req(2)), explain=False).windows[0].start == T0 + 5 * H
