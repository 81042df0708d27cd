"""``row_changes.net_rows`` counts rows by their field tuples: it must give exactly what the Counter
arithmetic on the rows themselves gives (the reference it replaced), the same rows in the same order,
repeats and VLAN tags included."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from slotbroker.engine.snapshot import AllocationSnap
from slotbroker.services.find_slot.row_changes import net_rows

# few distinct values, so rows repeat and both lists share rows
rows = st.builds(
    AllocationSnap,
    st.integers(1, 3),
    st.sampled_from(["VCPU", "VLAN"]),
    st.integers(1, 2),
    st.integers(0, 2),
    st.integers(3, 4),
    st.one_of(st.none(), st.integers(100, 101)),
)


def reference(
    added: list[AllocationSnap], removed: list[AllocationSnap]
) -> tuple[list[AllocationSnap], list[AllocationSnap]]:
    a, r = Counter(added), Counter(removed)
    return list((a - r).elements()), list((r - a).elements())


@settings(max_examples=300, deadline=None)
@given(added=st.lists(rows, max_size=12), removed=st.lists(rows, max_size=12))
def test_net_rows_equals_the_counter_arithmetic_on_rows(
    added: list[AllocationSnap], removed: list[AllocationSnap]
) -> None:
    assert net_rows(added, removed) == reference(added, removed)


def test_a_row_removed_and_added_cancels_and_repeats_count() -> None:
    a = AllocationSnap(1, "VCPU", 1, 0, 10)
    b = AllocationSnap(2, "VCPU", 1, 0, 10)
    tagged = AllocationSnap(3, "VLAN", 1, 0, 10, 100)
    plus, minus = net_rows([a, a, b, tagged], [a, tagged, AllocationSnap(3, "VLAN", 1, 0, 10, 101)])
    assert plus == [a, b]
    assert minus == [AllocationSnap(3, "VLAN", 1, 0, 10, 101)]
