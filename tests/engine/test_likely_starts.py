"""Selecting before the site summaries at a start every component's reach admits (``try_start(...,
likely=True)``), held to the plain order: the selector over every eligible site finds what it finds
over the sites the summaries pass (a site they drop has too little room for it as well), fails
wherever the summaries reject, and the search answers the same either way (windows, explanation,
candidates tried)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slotbroker.domain.request import parse_request
from slotbroker.engine import (
    AllocationSnap,
    HostSnap,
    InventorySnap,
    Snapshot,
    find_slots,
)
from slotbroker.engine import search as search_mod
from slotbroker.engine.plan import compile_plan
from slotbroker.engine.search import try_start
from slotbroker.engine.stages.base import Rejection
from slotbroker.engine.stages.reach import admitted, next_possible
from slotbroker.engine.stages.select import Selector
from slotbroker.engine.stages.site_summary import candidate_sites, eligible_sites

from .strategies import T0, H, iso, worlds
from .worlds import one_site, planned, windows

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(data=st.data(), snap=worlds())
def test_selector_over_every_eligible_site_equals_the_summarised_one(
    data: st.DataObject, snap: Snapshot
) -> None:
    _, index, plan = planned(data, snap)
    every = eligible_sites(index, plan)
    for s, e in windows(plan):
        sites, rej = candidate_sites(index, plan, s, e)
        wide = Selector(index, plan, s, e, every)
        unnamed = Selector(index, plan, s, e, None)  # every eligible site, without naming them
        assert {c: list(v.sites) for c, v in wide.local.items()} == {
            c: list(v.sites) for c, v in unnamed.local.items()
        }
        got = wide.run()
        assert got == unnamed.run()
        if rej is not None:
            assert isinstance(got, Rejection)
            continue
        plain = Selector(index, plan, s, e, sites)
        assert {c: list(v.sites) for c, v in wide.local.items()} == {
            c: list(v.sites) for c, v in plain.local.items()
        }
        assert got == plain.run()


@SETTINGS
@given(data=st.data(), snap=worlds())
def test_search_answers_the_same_with_and_without_likely_starts(data: st.DataObject, snap: Snapshot) -> None:
    req, index, _ = planned(data, snap)
    fast = find_slots(index, req)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(search_mod, "admitted", lambda _plan, _t: False)  # likely only at the first start
        assert fast == find_slots(index, req)
        mp.setattr(search_mod, "likely_start", lambda _plan, _t, _first: False)  # never
        assert fast == find_slots(index, req)


def test_a_likely_start_the_summaries_reject_reports_their_rejection() -> None:
    """One 8-core host, 1 core booked for the first two hours, two 4-core instances asked: the reach
    admits the range start (the host alone holds one instance; it could hold two), the site summary
    does not (7 cores left of 8 needed). The selector tried first fails, and the rejection reported,
    hence the explanation and the next start, is the summaries' one."""
    hosts = (HostSnap(1, "h0", "A", inventories={"VCPU": InventorySnap(8)}),)
    index = one_site(hosts, [AllocationSnap(1, "VCPU", 1, T0, T0 + 2 * H)])
    req = parse_request(
        {
            "components": [{"name": "x", "count": 2, "resources": {"VCPU": 4}}],
            "earliest_start": iso(T0),
            "latest_end": iso(T0 + 6 * H),
            "duration": H,
        }
    )
    plan = compile_plan(req, index)
    assert next_possible(index, plan, plan.comps[0], T0) == T0  # the reach admits the first start
    assert admitted(plan, T0)
    got = try_start(index, plan, T0, likely=True)
    assert isinstance(got, Rejection)
    assert got == try_start(index, plan, T0)
    assert got.resource_class == "VCPU"  # the summaries name the class and give their bound
    assert got.retry_at == T0 + 2 * H
    fast = find_slots(index, req)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(search_mod, "likely_start", lambda _plan, _t, _first: False)
        assert fast == find_slots(index, req)
    assert fast.windows[0].start == T0 + 2 * H
