"""The selector's one-instance path held to its plain form: one instance at a site without packing
(``Selector._one``) against ``pack``, and ``first_host`` against ``host_order``."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slotbroker.domain.request import Policy, parse_request
from slotbroker.engine import (
    AllocationSnap,
    HostSnap,
    InventorySnap,
    Snapshot,
    find_slots,
)
from slotbroker.engine.stages.rankers import first_host, host_order
from slotbroker.engine.stages.select import Selector
from slotbroker.engine.stages.site_summary import candidate_sites

from .strategies import T0, H, iso, worlds
from .worlds import one_site, planned, windows

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings(max_examples=400, deadline=None)
@given(
    policy=st.sampled_from(list(Policy)),
    rows=st.lists(
        st.tuples(
            st.lists(st.integers(-3, 9), min_size=2, max_size=2),
            st.lists(st.integers(0, 9), min_size=2, max_size=2),
        ),
        min_size=1,
        max_size=7,
    ),
)
def test_first_host_is_the_first_of_host_order(
    policy: Policy, rows: list[tuple[list[int], list[int]]]
) -> None:
    free = np.array([f for f, _ in rows], dtype=np.int64)
    cap = np.array([c for _, c in rows], dtype=np.int64)
    assert first_host(policy, free, cap) == host_order(policy, free, cap)[0]
    assert first_host(policy, free[:, :0], cap[:, :0]) == host_order(policy, free[:, :0], cap[:, :0])[0]


@SETTINGS
@given(data=st.data(), snap=worlds())
def test_one_instance_without_packing_equals_packing(data: st.DataObject, snap: Snapshot) -> None:
    _, index, plan = planned(data, snap)
    for s, e in windows(plan):
        sites, rej = candidate_sites(index, plan, s, e)
        if rej is not None:
            continue
        fast = Selector(index, plan, s, e, sites).run()
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(Selector, "_one", lambda *_a: None)
            assert fast == Selector(index, plan, s, e, sites).run()


@pytest.mark.parametrize(("policy", "host"), [("earliest", "h1"), ("spread", "h0"), ("first_fit", "h0")])
def test_one_instance_goes_to_the_first_host_of_the_policy_order(policy: str, host: str) -> None:
    """Two 8-core hosts at one site, h1 with 6 cores booked: the tightest-first order picks h1, the
    emptiest-first and the plain order h0, with and without packing."""
    inv = {"VCPU": InventorySnap(8)}
    hosts = (HostSnap(1, "h0", "A", inventories=inv), HostSnap(2, "h1", "A", inventories=inv))
    index = one_site(hosts, [AllocationSnap(2, "VCPU", 6, T0, T0 + 4 * H)])
    doc = {
        "components": [{"name": "x", "resources": {"VCPU": 2}}],
        "earliest_start": iso(T0),
        "latest_end": iso(T0 + 4 * H),
        "duration": H,
        "policy": policy,
    }
    fast = find_slots(index, parse_request(doc))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Selector, "_one", lambda *_a: None)
        assert fast == find_slots(index, parse_request(doc))
    assert fast.windows[0].placement == {"x": [host]}
