"""The window's alternates (``search._alternates``, Python lists and ``host_order``'s key computed as
numpy computes it) held to the definition with numpy arrays, host by host (the form it replaced), on
random worlds under every policy, and the key itself against numpy's on random amounts."""

from __future__ import annotations

from typing import Any

import numpy as np
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
from slotbroker.engine.plan import Plan
from slotbroker.engine.stages.rankers import host_order
from slotbroker.engine.stages.select import Choice, prepared

from .strategies import T0, H, iso, requests, worlds

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _alternates_plain(
    index: CalendarIndex, plan: Plan, ch: Choice, residual: dict[int, Any], rows: Any, free_all: Any
) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if plan.alternates == 0:
        return out
    topo = index.topo
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
        out[c.name] = [topo.hosts[int(cand[i])].name for i in order if ok[i]][: plan.alternates]
    return out


@SETTINGS
@given(data=st.data(), snap=worlds(), alternates=st.integers(0, 3), policy=st.sampled_from(list(Policy)))
def test_alternates_equal_the_definition(
    data: st.DataObject, snap: Snapshot, alternates: int, policy: Policy
) -> None:
    req = data.draw(requests(snap)).model_copy(update={"alternates": alternates, "policy": policy})
    index = CalendarIndex(snap)
    calls: list[int] = []
    real = search_mod._alternates

    def both(*args: Any) -> dict[str, list[str]]:
        got = real(*args)
        assert got == _alternates_plain(*args)
        calls.append(1)
        return got

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(search_mod, "_alternates", both)
        res = find_slots(index, req, explain=False)
    assert len(calls) == len(res.windows)


@settings(max_examples=300, deadline=None)
@given(
    k=st.integers(1, search_mod.SHORT_SUM - 1),
    n=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
)
def test_the_key_in_python_is_numpys(k: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    free = rng.integers(-5, 1 << 40, (n, k))
    cap = rng.integers(0, 1 << 40, (n, k))
    want = (free / np.maximum(cap, 1)).sum(axis=1).tolist()
    got = [
        sum(float(x) / float(max(c, 1)) for x, c in zip(f, cp, strict=True))
        for f, cp in zip(free.tolist(), cap.tolist(), strict=True)
    ]
    assert got == want


@pytest.mark.parametrize(
    ("policy", "placed", "want"),
    [
        ("earliest", "h3", ["h2", "h1", "h0"]),
        ("spread", "h0", ["h1", "h2", "h3"]),
        ("first_fit", "h0", ["h1", "h2", "h3"]),
    ],
)
def test_alternates_follow_the_policy_order(policy: str, placed: str, want: list[str]) -> None:
    """Four 8-core hosts at one site with 0, 2, 4 and 6 cores booked on h0..h3: the instance goes to
    the policy's first host, the alternates are the others in the policy's order (tightest first for
    ``earliest``, emptiest first for ``spread``, by row for ``first_fit``)."""
    inv = {"VCPU": InventorySnap(8)}
    hosts = tuple(HostSnap(i + 1, f"h{i}", "A", inventories=inv) for i in range(4))
    booked = AllocationTable.from_rows(
        [AllocationSnap(i + 1, "VCPU", 2 * i, T0, T0 + 4 * H) for i in range(1, 4)]
    )
    index = CalendarIndex(Snapshot(hosts, (SiteSnap("A"),), (), (), booked))
    doc = {
        "components": [{"name": "x", "resources": {"VCPU": 1}}],
        "earliest_start": iso(T0),
        "latest_end": iso(T0 + 4 * H),
        "duration": H,
        "policy": policy,
        "alternates": 3,
    }
    w = find_slots(index, parse_request(doc)).windows[0]
    assert w.placement == {"x": [placed]}
    assert w.alternates == {"x": want}
