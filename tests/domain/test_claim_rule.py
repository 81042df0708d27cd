"""The claim decision on its own (``domain/claim_rule.py: decide``): no database, plain facts in, an answer
out. The database paths that feed it are held to each other by ``test_pg_claims.py``; here the rule is
checked directly, and against a few-line reference over random claims."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slotbroker.domain.claim_rule import (
    InventoryFacts,
    LockedProvider,
    Pair,
    PairState,
    ReapFirst,
    Usage,
    Write,
    decide,
    vlan_tags,
)
from slotbroker.domain.claims import ClaimItem, ClaimRequest, ConsumerKind, ConsumerSpec
from slotbroker.domain.errors import CapacityConflict, ValidationFailed

S, E = 1_000, 2_000
HOSTS = {u: LockedProvider(i, u, u.upper(), "host") for i, u in ((7, "h7"), (3, "h3"), (5, "h5"))}
PORT = LockedProvider(9, "p9", "PORT", "facility_port")


def _inv(total: int, *, step: int = 1, max_unit: int | None = None, ratio: float = 1.0) -> InventoryFacts:
    return InventoryFacts(total, 0, 1, max_unit or total, step, ratio)


def _state(inv: InventoryFacts, peak: int = 0, expired: bool = False, vlans: str | None = None) -> PairState:
    return PairState(inv, vlans, Usage(peak, expired))


def _request(*items: ClaimItem, uuid: str | None = None) -> ClaimRequest:
    return ClaimRequest(ConsumerSpec(ConsumerKind.LEASE, "science", S, E, uuid=uuid), tuple(items))


def _pointers(
    exc: pytest.ExceptionInfo[ValidationFailed] | pytest.ExceptionInfo[CapacityConflict],
) -> list[str]:
    return [e.pointer for e in exc.value.errors]


def test_a_fitting_claim_is_written_with_the_lowest_provider_as_the_shard() -> None:
    request = _request(ClaimItem("h7", "VCPU", 2), ClaimItem("h3", "VCPU", 1), uuid="c-1")
    state = {(7, "VCPU"): _state(_inv(4), peak=2), (3, "VCPU"): _state(_inv(1))}
    decision = decide(request, HOSTS, state)
    assert isinstance(decision, Write)
    assert decision.rows == [(7, "VCPU", 2, None), (3, "VCPU", 1, None)]
    assert decision.shard_key == 3
    assert decision.consumer["uuid"] == "c-1"
    assert decision.consumer["status"] == "PENDING"
    result = decision.result(request, consumer_id=42, attempts=2)
    assert (result.consumer_uuid, result.consumer_id, result.allocations, result.attempts) == (
        "c-1",
        42,
        2,
        2,
    )


def test_expired_holds_in_the_way_are_reaped_first() -> None:
    request = _request(ClaimItem("h7", "VCPU", 1))
    state = {(7, "VCPU"): _state(_inv(4), expired=True), (3, "GPU"): _state(_inv(1), expired=True)}
    decision = decide(request, HOSTS, state)
    assert isinstance(decision, ReapFirst)
    assert decision.pairs == [(3, "GPU"), (7, "VCPU")]
    assert decision.then.rows == [(7, "VCPU", 1, None)]


def test_unknown_providers_are_invalid_before_anything_else() -> None:
    request = _request(ClaimItem("h7", "VCPU", 99), ClaimItem("nope", "VCPU", 1))
    with pytest.raises(ValidationFailed) as caught:
        decide(request, HOSTS, {})
    assert _pointers(caught) == ["/items/1/provider_uuid"]


def test_inventory_rules_are_invalid_not_conflicts() -> None:
    request = _request(
        ClaimItem("h7", "GPU", 1),  # no such inventory
        ClaimItem("h3", "VCPU", 3),  # not a multiple of 2
        ClaimItem("h5", "VCPU", 100),  # above max_unit (and capacity: the rule speaks first)
    )
    state = {(3, "VCPU"): _state(_inv(8, step=2)), (5, "VCPU"): _state(_inv(200, max_unit=10))}
    with pytest.raises(ValidationFailed) as caught:
        decide(request, HOSTS, state)
    assert _pointers(caught) == ["/items/0/resource_class", "/items/1/amount", "/items/2/amount"]


def test_capacity_conflicts_name_every_item_of_a_full_pair_in_item_order() -> None:
    request = _request(ClaimItem("h7", "VCPU", 2), ClaimItem("h3", "VCPU", 1), ClaimItem("h7", "VCPU", 2))
    state = {(7, "VCPU"): _state(_inv(8), peak=5), (3, "VCPU"): _state(_inv(1))}
    with pytest.raises(CapacityConflict) as caught:
        decide(request, HOSTS, state)
    assert _pointers(caught) == ["/items/0", "/items/2"]
    assert "peak usage 5 in [1000, 2000) + 4 requested exceeds capacity 8" in caught.value.errors[0].detail


def test_vlan_tags_outside_the_port_or_taken() -> None:
    locked = {**HOSTS, "p9": PORT}
    state = {(9, "VLAN"): _state(_inv(4094), vlans="100-200"), (7, "VLAN"): _state(_inv(10))}
    outside = _request(ClaimItem("p9", "VLAN", 1, vlan_tag=300), ClaimItem("h7", "VLAN", 1, vlan_tag=150))
    with pytest.raises(ValidationFailed) as invalid:
        decide(outside, locked, state)
    assert _pointers(invalid) == ["/items/0/vlan_tag", "/items/1/provider_uuid"]

    taken = _request(ClaimItem("p9", "VLAN", 1, vlan_tag=150), ClaimItem("p9", "VLAN", 1, vlan_tag=151))
    assert vlan_tags(taken, locked) == [(9, 150), (9, 151)]
    with pytest.raises(CapacityConflict) as conflict:
        decide(taken, locked, state, taken_vlans={(9, 151)})
    assert _pointers(conflict) == ["/items/1/vlan_tag"]
    assert isinstance(decide(taken, locked, state, taken_vlans={(9, 152)}), Write)


# -- against a reference ------------------------------------------------------------------------------------

PAIRS: list[Pair] = [(7, "VCPU"), (7, "MEMORY_MB"), (3, "VCPU"), (5, "GPU")]
UUID_OF = {p.id: p.uuid for p in HOSTS.values()}

facts = st.fixed_dictionaries(
    {
        pair: st.tuples(st.integers(0, 12), st.integers(0, 12), st.booleans())  # capacity, peak, expired
        for pair in PAIRS
    }
)
items = st.lists(st.tuples(st.sampled_from(PAIRS), st.integers(1, 6)), min_size=1, max_size=6)


@given(facts=facts, wanted=items)
def test_decide_agrees_with_a_sum_per_pair(
    facts: dict[Pair, tuple[int, int, bool]], wanted: list[tuple[Pair, int]]
) -> None:
    """A claim fits exactly when, for every (provider, class) it touches, the peak plus the sum of its
    items stays within capacity; a conflict names exactly the items of the pairs that do not."""
    state = {
        pair: _state(_inv(cap, max_unit=100), peak, expired) for pair, (cap, peak, expired) in facts.items()
    }
    request = _request(*(ClaimItem(UUID_OF[pid], rc, amount) for (pid, rc), amount in wanted))
    total: dict[Pair, int] = defaultdict(int)
    for pair, amount in wanted:
        total[pair] += amount
    full = {pair for pair, amount in total.items() if facts[pair][1] + amount > facts[pair][0]}
    if full:
        with pytest.raises(CapacityConflict) as caught:
            decide(request, HOSTS, state)
        assert _pointers(caught) == [f"/items/{i}" for i, (pair, _) in enumerate(wanted) if pair in full]
        return
    decision = decide(request, HOSTS, state)
    dead = sorted(pair for pair, (_, _, expired) in facts.items() if expired)
    if dead:
        assert isinstance(decision, ReapFirst)
        assert decision.pairs == dead
        decision = decision.then
    assert isinstance(decision, Write)
    assert decision.rows == [(pid, rc, amount, None) for (pid, rc), amount in wanted]
    assert decision.shard_key == 3
