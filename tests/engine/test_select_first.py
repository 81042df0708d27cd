"""The headline's last fixed costs (issue 18, decision 0047) held to their plain forms: a component
alone at one of its candidate sites is not packed until the final choice reads it (``Selector._fits``),
and the search's first start selects before the site summaries (``search.likely_start``). Both must
leave every answer, explanation and count of candidates as the plain forms give them."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from slotbroker.domain.request import SlotRequest, parse_request
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
from slotbroker.engine.plan import Plan, compile_plan
from slotbroker.engine.search import try_start
from slotbroker.engine.stages import select as select_mod
from slotbroker.engine.stages.base import Reason, Rejection
from slotbroker.engine.stages.select import Choice, Selector
from slotbroker.engine.stages.site_summary import candidate_sites

from .strategies import T0, H, iso, wild_worlds, worlds
from .worlds import one_site, planned, wild_planned, windows

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _searched(sel: Selector) -> tuple[Choice | Rejection, int, dict[tuple[Reason, str | None], int]]:
    """What a selector answers and what its search counted (nodes, failures per reason)."""
    got = sel.run()
    return got, sel.nodes, dict(sel.fails)


def _eager(mp: pytest.MonkeyPatch) -> None:
    """The plain form: every packing is made when the search asks whether it exists."""
    mp.setattr(Selector, "_uncapped", lambda _self: False)


def _lone_packings_exist(index: CalendarIndex, plan: Plan, s: int, e: int) -> None:
    sel = Selector(index, plan, s, e, None)
    if not sel._uncapped():
        event("capped amounts: packed at once")
        return
    for c in plan.comps:
        for site in sel.local[c.idx].sites.tolist():
            assert sel._pack(site, frozenset({c.idx})) is not None, (c.name, site)


@SETTINGS
@given(data=st.data(), snap=worlds())
def test_a_lone_component_packs_at_each_of_its_candidate_sites(data: st.DataObject, snap: Snapshot) -> None:
    """What the lazy path rests on: a site the selector keeps for a component has room for all its
    instances, and then ``pack`` finds a packing of it alone there, whatever the policy."""
    _, index, plan = planned(data, snap)
    for s, e in windows(plan):
        _lone_packings_exist(index, plan, s, e)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), snap=wild_worlds())
def test_a_lone_component_packs_at_each_of_its_candidate_sites_in_wild_worlds(
    data: st.DataObject, snap: Snapshot
) -> None:
    """The same over huge capacities, empty components and huge counts (where amounts near 2**62
    would be capped by ``usable_free``, the selector packs at once instead)."""
    got = wild_planned(data, snap)
    if got is None:
        return
    _, index, plan = got
    for s, e in windows(plan, 4):
        _lone_packings_exist(index, plan, s, e)


@SETTINGS
@given(data=st.data(), snap=worlds())
def test_lazy_lone_packing_searches_as_packing_at_once(data: st.DataObject, snap: Snapshot) -> None:
    """Same choice or rejection, same nodes, same failure counts: over every eligible site and over
    the sites the summaries pass."""
    _, index, plan = planned(data, snap)
    for s, e in windows(plan):
        sites, rej = candidate_sites(index, plan, s, e)
        for allowed in (None, sites) if rej is None else (None,):
            fast = _searched(Selector(index, plan, s, e, allowed))
            with pytest.MonkeyPatch.context() as mp:
                _eager(mp)
                assert fast == _searched(Selector(index, plan, s, e, allowed))


@SETTINGS
@given(data=st.data(), snap=st.one_of(worlds(), wild_worlds()))
def test_search_answers_the_same_with_lazy_lone_packing(data: st.DataObject, snap: Snapshot) -> None:
    got = wild_planned(data, snap) if data.draw(st.booleans()) else planned(data, snap)
    if got is None:
        return
    req, index, _ = got
    fast = find_slots(index, req)
    with pytest.MonkeyPatch.context() as mp:
        _eager(mp)
        assert fast == find_slots(index, req)


def test_huge_free_amounts_are_packed_at_once() -> None:
    """Two hosts of 2**62 cores: ``usable_free`` caps a pair of them at (2**63 - 1) // 2, so the
    room (counted uncapped) proves nothing and the lone component is packed when asked; the answer
    is the plain form's."""
    inv = {"VCPU": InventorySnap(2**62)}
    hosts = (HostSnap(1, "h0", "A", inventories=inv), HostSnap(2, "h1", "B", inventories=inv))
    sites = (SiteSnap("A"), SiteSnap("B"))
    index = CalendarIndex(Snapshot(hosts, sites, (), (), AllocationTable.from_rows([])))
    req = parse_request(
        {
            "components": [{"name": "x", "count": 2, "resources": {"VCPU": 2**53}}],
            "earliest_start": iso(T0),
            "latest_end": iso(T0 + 4 * H),
            "duration": H,
        }
    )
    plan = compile_plan(req, index)
    sel = Selector(index, plan, T0, T0 + H, None)
    assert not sel._uncapped()
    fast = find_slots(index, req)
    with pytest.MonkeyPatch.context() as mp:
        _eager(mp)
        assert fast == find_slots(index, req)
    assert fast.windows[0].placement == {"x": ["h0", "h0"]}


@SETTINGS
@given(data=st.data(), snap=st.one_of(worlds(), wild_worlds()))
def test_search_answers_the_same_selecting_first_at_the_first_start(
    data: st.DataObject, snap: Snapshot
) -> None:
    """Windows, explanation (its relaxed searches select first too) and candidates tried."""
    got = wild_planned(data, snap) if data.draw(st.booleans()) else planned(data, snap)
    if got is None:
        return
    req, index, _ = got
    fast = find_slots(index, req)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(search_mod, "likely_start", lambda _plan, _t, _first: False)
        assert fast == find_slots(index, req)


@SETTINGS
@given(data=st.data(), snap=st.one_of(worlds(), wild_worlds()))
def test_the_summaries_pass_when_every_component_has_a_site_with_room(
    data: st.DataObject, snap: Snapshot
) -> None:
    """What lets a likely start skip the summaries: a selector over every eligible site with a site
    for each component means no component fails the summaries' bound (overbooked hosts included:
    their sites have no bound), and the selector over the summaries' sites keeps the same sites."""
    got = wild_planned(data, snap) if data.draw(st.booleans()) else planned(data, snap)
    if got is None:
        return
    _, index, plan = got
    if any(c.hosts.size == 0 for c in plan.comps):
        return  # the search returns before any start
    for s, e in windows(plan, 8):
        wide = Selector(index, plan, s, e, None)
        sites, rej = candidate_sites(index, plan, s, e)
        if wide.stuck():
            event("stuck")
            continue
        assert rej is None
        narrow = Selector(index, plan, s, e, sites)
        assert [list(wide.local[c.idx].sites) for c in plan.comps] == [
            list(narrow.local[c.idx].sites) for c in plan.comps
        ]
        assert _searched(wide) == _searched(narrow)


def _eight_cores(n: int, booked: int) -> CalendarIndex:
    """``n`` 8-core hosts at site A, each with ``booked`` cores held for the first two hours."""
    hosts = tuple(HostSnap(i + 1, f"h{i}", "A", inventories={"VCPU": InventorySnap(8)}) for i in range(n))
    return one_site(hosts, [AllocationSnap(h.id, "VCPU", booked, T0, T0 + 2 * H) for h in hosts])


def _asking(count: int, cores: int) -> SlotRequest:
    return parse_request(
        {
            "components": [{"name": "x", "count": count, "resources": {"VCPU": cores}}],
            "earliest_start": iso(T0),
            "latest_end": iso(T0 + 6 * H),
            "duration": H,
        }
    )


def test_a_first_start_the_summaries_reject_reports_their_rejection_without_reading_the_reach(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One host, 7 of 8 cores free for two hours, two 4-core instances: the selector (tried first)
    has no site with room for both, and the site's bound (7 < 8) rejects too. The summaries'
    rejection is reported (their class and bound); the selector's own one, which reads the
    component's reach, is never made."""
    index, req = _eight_cores(1, 1), _asking(2, 4)
    plan = compile_plan(req, index)

    def no_reach(*_a: object) -> int:
        raise AssertionError("the stuck selector's rejection was made")

    with monkeypatch.context() as mp:
        mp.setattr(select_mod, "host_level_bound", no_reach)
        got = try_start(index, plan, T0, likely=True)
    assert got == try_start(index, compile_plan(req, index), T0)
    assert isinstance(got, Rejection)
    assert (got.resource_class, got.retry_at) == ("VCPU", T0 + 2 * H)
    assert find_slots(index, req).windows[0].start == T0 + 2 * H


def test_a_first_start_the_summaries_pass_reports_the_selectors_rejection() -> None:
    """Two hosts with 7 of 8 cores free for two hours, one 8-core instance: the site's bound
    (14 >= 8) passes, no host holds the instance. The stuck selector's rejection is reported, with
    the host-level bound the plain order gives."""
    index, req = _eight_cores(2, 1), _asking(1, 8)
    plan = compile_plan(req, index)
    got = try_start(index, plan, T0, likely=True)
    assert isinstance(got, Rejection)
    assert got == try_start(index, compile_plan(req, index), T0)
    assert got.retry_at == T0 + 2 * H
    fast = find_slots(index, req)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(search_mod, "likely_start", lambda _plan, _t, _first: False)
        assert fast == find_slots(index, req)
    assert fast.windows[0].start == T0 + 2 * H
