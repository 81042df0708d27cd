"""The headline's fixed cost (issue 18, decision 0043) held to plain forms: packing on Python
lists (its sums, shares and exact search) against the same steps on numpy arrays, the alternates
(own hosts left out of the answer, not out of the ordering) against the form that drops them first,
and the host order by a stable sort against a plain sort by (key, row)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slotbroker.domain.request import Policy, parse_request
from slotbroker.engine import (
    AllocationSnap,
    AllocationTable,
    CalendarIndex,
    HostSnap,
    InventorySnap,
    SiteSnap,
    Snapshot,
    find_slots,
)
from slotbroker.engine import search as search_mod
from slotbroker.engine.packing import Item, _best_fit, _exact, _size, pack, usable_free
from slotbroker.engine.stages.prepared import prepared
from slotbroker.engine.stages.rankers import host_order
from slotbroker.engine.stages.select import Selector

from .strategies import T0, H, iso, requests, worlds
from .worlds import one_site

I64 = npt.NDArray[np.int64]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _exact_arrays(items: list[Item], res: I64, order: list[int], budget: int) -> dict[int, list[int]] | None:
    """The exact search on numpy arrays, node for node (the plain form of ``packing._exact``)."""
    seq = [(k, it) for k, it in enumerate(items) for _ in range(it.count)]
    rest = np.zeros((len(seq) + 1, res.shape[1]), dtype=np.int64)
    for i in range(len(seq) - 1, -1, -1):
        rest[i] = rest[i + 1] + seq[i][1].demand
    chosen: list[int] = []
    pos = {h: i for i, h in enumerate(order)}
    elig = np.array([it.eligible for it in items])
    nodes = 0

    def dfs(i: int) -> bool:
        nonlocal nodes
        if i == len(seq):
            return True
        nodes += 1
        if nodes > budget or (rest[i] > res.sum(axis=0)).any():
            return False
        k, it = seq[i]
        floor = pos[chosen[-1]] if i > 0 and seq[i - 1][0] == k else 0
        fits = (it.eligible & (res >= it.demand).all(axis=1)).tolist()
        tried: set[tuple[bytes, bytes]] = set()
        for h in order[floor:]:
            if not fits[h]:
                continue
            sig = (res[h].tobytes(), elig[k:, h].tobytes())
            if sig in tried:
                continue
            tried.add(sig)
            res[h] -= it.demand
            chosen.append(h)
            if dfs(i + 1):
                return True
            chosen.pop()
            res[h] += it.demand
        return False

    if not dfs(0):
        return None
    out: dict[int, list[int]] = {}
    for (_, it), h in zip(seq, chosen, strict=True):
        out.setdefault(it.comp, []).append(h)
    return out


@settings(max_examples=400, deadline=None)
@given(data=st.data(), n_hosts=st.integers(1, 6), n_cls=st.integers(1, 3), budget=st.integers(1, 40))
def test_exact_on_lists_equals_exact_on_arrays(
    data: st.DataObject, n_hosts: int, n_cls: int, budget: int
) -> None:
    """Same assignment (not only the same feasibility), the same budget cut, identical-host skips."""
    row = st.lists(st.integers(-2, 6), min_size=n_cls, max_size=n_cls)
    free = usable_free(np.array(data.draw(st.lists(row, min_size=n_hosts, max_size=n_hosts)), np.int64))
    n_items = data.draw(st.integers(1, 3))
    items = [
        Item(
            10 + k,
            data.draw(st.integers(1, 3)),
            np.array(data.draw(st.lists(st.integers(0, 3), min_size=n_cls, max_size=n_cls)), np.int64),
            np.array(data.draw(st.lists(st.booleans(), min_size=n_hosts, max_size=n_hosts)), dtype=bool),
        )
        for k in range(n_items)
    ]
    order = data.draw(st.permutations(list(range(n_hosts))))
    before = free.copy()
    got = _exact(items, free, order, budget)
    assert (free == before).all()  # the caller's array is left alone
    assert got == _exact_arrays(items, free.copy(), order, budget)


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    n=st.integers(0, 7),
    policy=st.sampled_from([p for p in Policy if p != Policy.LEAST_GAP]),
)
def test_host_order_is_a_sort_by_key_then_row(data: st.DataObject, n: int, policy: Policy) -> None:
    row = st.lists(st.integers(0, 4), min_size=2, max_size=2)  # small values: many ties
    free = np.array(data.draw(st.lists(row, min_size=n, max_size=n)), np.int64).reshape(n, 2)
    cap = np.array(data.draw(st.lists(row, min_size=n, max_size=n)), np.int64).reshape(n, 2)
    keys = [sum(float(f) / max(int(c), 1) for f, c in zip(free[i], cap[i], strict=True)) for i in range(n)]
    if policy == Policy.FIRST_FIT:
        want = list(range(n))
    else:
        sign = -1.0 if policy == Policy.SPREAD else 1.0
        want = sorted(range(n), key=lambda i: (sign * keys[i], i))
    assert host_order(policy, free, cap) == want


def _alternates_plain(
    index: CalendarIndex, plan: Any, ch: Any, residual: dict[int, I64], rows: I64, free_all: I64
) -> dict[str, list[str]]:
    """Alternates with the component's own hosts dropped before ordering."""
    out: dict[str, list[str]] = {}
    if plan.alternates == 0:
        return out
    prep = prepared(index, plan)
    for (ps, ss), c in zip(prep.by_site, plan.comps, strict=True):
        mine = np.searchsorted(rows, np.array(ch.hosts[c.idx], dtype=np.int64))
        lo, hi = np.searchsorted(ss, [ch.sites[c.idx], ch.sites[c.idx] + 1])
        p = ps[lo:hi]
        keep = np.ones(p.shape[0], dtype=bool)
        keep[np.searchsorted(p, mine)] = False
        p = p[keep]
        cand = rows[p]
        free = free_all[p].copy()
        for i, r in enumerate(cand.tolist()):
            if r in residual:
                free[i] = residual[r]
        ok = ((free >= c.demand) | (c.demand == 0)).all(axis=1)
        caps = prep.cap[p] if plan.classes else free
        order = host_order(plan.policy, free, caps)
        out[c.name] = [index.topo.hosts[int(cand[i])].name for i in order if ok[i]][: plan.alternates]
    return out


@SETTINGS
@given(data=st.data(), snap=worlds())
def test_alternates_equal_the_plain_form(data: st.DataObject, snap: Snapshot) -> None:
    req = data.draw(requests(snap))
    index = CalendarIndex(snap)
    fast = search_mod._alternates

    def both(
        index: CalendarIndex, plan: Any, ch: Any, residual: dict[int, I64], rows: I64, free_all: I64
    ) -> dict[str, list[str]]:
        copy = {r: v.copy() for r, v in residual.items()}
        got = fast(index, plan, ch, residual, rows, free_all)
        assert got == _alternates_plain(index, plan, ch, copy, rows, free_all.copy())
        return got

    search_mod._alternates = both
    try:
        find_slots(index, req, explain=False)
    finally:
        search_mod._alternates = fast


def test_exact_backtracks_and_restores_what_is_left() -> None:
    """The first host the order offers leads nowhere: the search takes it back (and its free room
    with it) and finds the other packing."""
    free = np.array([[2], [2]], np.int64)
    items = [
        Item(10, 1, np.array([2], np.int64), np.array([True, True])),
        Item(11, 1, np.array([2], np.int64), np.array([True, False])),
    ]
    want = {10: [1], 11: [0]}
    assert _exact_arrays(items, free.copy(), [0, 1], 100) == want
    assert _exact(items, free, [0, 1], 100) == want


def _pack_arrays(items: list[Item], free: I64, order: list[int], exact: bool) -> dict[int, list[int]] | None:
    """``pack`` with its sums and shares on numpy arrays (the plain form)."""
    free = usable_free(free)
    total = free.sum(axis=0) if free.size else np.zeros(free.shape[1], dtype=np.int64)
    need = sum((it.demand * it.count for it in items), np.zeros(free.shape[1], dtype=np.int64))
    if (need > total).any():
        return None
    if len(items) == 1 and items[0].count == 1:
        it = items[0]
        fits = it.eligible & (free >= it.demand).all(axis=1)
        return next(({it.comp: [h]} for h in order if fits[h]), None)

    def size(it: Item) -> float:
        return float((it.demand / np.maximum(total, 1)).max(initial=0.0))

    items = sorted(items, key=lambda it: (-size(it), it.comp))
    if exact:
        return _exact_arrays(items, free.copy(), order, 20_000)
    return _best_fit(items, free.copy(), order)


@settings(max_examples=400, deadline=None)
@given(
    data=st.data(),
    n_hosts=st.integers(1, 6),
    n_cls=st.integers(0, 3),
    exact=st.booleans(),
    big=st.booleans(),
)
def test_pack_on_lists_equals_pack_on_arrays(
    data: st.DataObject, n_hosts: int, n_cls: int, exact: bool, big: bool
) -> None:
    """Same answer, including which item goes first (shares as floats, ties by component) and amounts
    past 2**53, where a share computed from Python ints would round differently."""
    hi = 2**61 if big else 6
    row = st.lists(st.integers(-2, hi), min_size=n_cls, max_size=n_cls)
    free = np.array(data.draw(st.lists(row, min_size=n_hosts, max_size=n_hosts)), np.int64)
    free = free.reshape(n_hosts, n_cls)
    items = [
        Item(
            data.draw(st.integers(0, 3)),  # components may repeat: ties by component, then as given
            data.draw(st.integers(1, 3)),
            np.array(
                data.draw(st.lists(st.integers(0, hi // 8), min_size=n_cls, max_size=n_cls)), np.int64
            ).reshape(n_cls),
            np.array(data.draw(st.lists(st.booleans(), min_size=n_hosts, max_size=n_hosts)), dtype=bool),
        )
        for _ in range(data.draw(st.integers(1, 3)))
    ]
    order = data.draw(st.permutations(list(range(n_hosts))))
    assert pack(items, free, order, exact) == _pack_arrays(items, free, order, exact)


@settings(max_examples=300, deadline=None)
@given(
    demand=st.lists(st.integers(0, 2**62), min_size=0, max_size=3),
    data=st.data(),
)
def test_size_is_the_share_numpy_computes(demand: list[int], data: st.DataObject) -> None:
    """Past 2**53 a share of Python ints rounds once, numpy's rounds each side first: it must be numpy's."""
    total = data.draw(st.lists(st.integers(0, 2**62), min_size=len(demand), max_size=len(demand)))
    want = float((np.array(demand, np.int64) / np.maximum(np.array(total, np.int64), 1)).max(initial=0.0))
    assert _size(demand, total) == want
    assert _size([2**53 + 1], [3]) == float(np.int64(2**53 + 1) / np.int64(3))


def test_items_of_equal_share_go_in_component_order() -> None:
    free = np.array([[4], [4]], np.int64)
    items = [Item(c, 1, np.array([4], np.int64), np.array([True, True])) for c in (1, 0)]
    assert pack(items, free, [0, 1], exact=True) == {0: [0], 1: [1]}
    assert _pack_arrays(items, free, [0, 1], exact=True) == {0: [0], 1: [1]}


def test_alternates_of_components_at_two_sites_are_each_sites_own() -> None:
    """Read once per set of hosts, not once per request: a component at another site gets its site's."""
    inv = {"VCPU": InventorySnap(8)}
    hosts = tuple(
        HostSnap(10 * k + i + 1, f"{site.lower()}{i}", site, inventories=inv)
        for i in range(3)
        for k, site in enumerate("AB")
    )
    world = Snapshot(hosts, (SiteSnap("A"), SiteSnap("B")), (), (), AllocationTable.from_rows([]))
    req = parse_request(
        {
            "components": [{"name": "a", "resources": {"VCPU": 4}}, {"name": "b", "resources": {"VCPU": 4}}],
            "groups": [{"kind": "different_sites", "components": ["a", "b"]}],
            "earliest_start": iso(T0),
            "latest_end": iso(T0 + 10 * H),
            "duration": 2 * H,
            "alternates": 3,
        }
    )
    index = CalendarIndex(world)
    (w,) = find_slots(index, req, explain=False).windows[:1]
    for comp, placed in w.placement.items():
        site = w.sites[comp]
        others = sorted(h.name for h in hosts if h.site == site and h.name not in placed)
        assert sorted(w.alternates[comp]) == others


# -- a component that needs no resource at all (an anchor pinned to a site) -------------------------------


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    n_hosts=st.integers(0, 5),
    n_cls=st.integers(0, 3),
    exact=st.booleans(),
    anchor_count=st.integers(1, 3),
)
def test_packing_an_item_that_needs_nothing_equals_the_arrays_form(
    data: st.DataObject, n_hosts: int, n_cls: int, exact: bool, anchor_count: int
) -> None:
    """An item whose demand is all zeros (or that has no classes at all) beside others: it fits
    every eligible host, overbooked ones included, and takes nothing from them; on lists as on
    arrays, with no hosts at all too."""
    row = st.lists(st.integers(-2, 6), min_size=n_cls, max_size=n_cls)
    free = np.array(data.draw(st.lists(row, min_size=n_hosts, max_size=n_hosts)), np.int64)
    free = free.reshape(n_hosts, n_cls)
    elig = st.lists(st.booleans(), min_size=n_hosts, max_size=n_hosts)
    anchor = Item(0, anchor_count, np.zeros(n_cls, np.int64), np.array(data.draw(elig), dtype=bool))
    others = [
        Item(
            1 + k,
            data.draw(st.integers(1, 2)),
            np.array(data.draw(st.lists(st.integers(0, 3), min_size=n_cls, max_size=n_cls)), np.int64),
            np.array(data.draw(elig), dtype=bool),
        )
        for k in range(data.draw(st.integers(0, 2)))
    ]
    items = data.draw(st.permutations([anchor, *others]))
    order = data.draw(st.permutations(list(range(n_hosts))))
    got = pack(items, free, order, exact)
    assert got == _pack_arrays(items, free, order, exact)
    usable = usable_free(free)
    assert _exact(items, usable, order, 40) == _exact_arrays(items, usable.copy(), order, 40)
    if not others:  # alone it needs only an eligible host
        assert (got is not None) == bool(anchor.eligible.any())
    if got is not None:
        assert all(anchor.eligible[h] for h in got[0])


def test_an_anchor_packed_with_a_component_at_its_site_takes_no_capacity() -> None:
    """An anchor pinned to site A in a same-site group with a 4-core instance: A's hosts are h0 (all
    4 cores booked) and h1 (free). The joint packing puts the instance on h1 and the anchor on h0
    (the tightest host first), and the search answers as when every packing is made at once."""
    inv = {"VCPU": InventorySnap(4)}
    hosts = (HostSnap(1, "h0", "A", inventories=inv), HostSnap(2, "h1", "A", inventories=inv))
    index = one_site(hosts, [AllocationSnap(1, "VCPU", 4, T0, T0 + 10 * H)])
    req = parse_request(
        {
            "components": [{"name": "anchor", "site": "A"}, {"name": "x", "resources": {"VCPU": 4}}],
            "groups": [{"kind": "same_site", "components": ["anchor", "x"]}],
            "earliest_start": iso(T0),
            "latest_end": iso(T0 + 4 * H),
            "duration": H,
        }
    )
    fast = find_slots(index, req)
    assert fast.windows[0].start == T0
    assert fast.windows[0].placement == {"anchor": ["h0"], "x": ["h1"]}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Selector, "_uncapped", lambda _self: False)
        assert fast == find_slots(index, req)
