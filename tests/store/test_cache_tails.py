"""``row_changes.cut_to_tails``: an early end replayed as its tail alone changes the calendar exactly
as removing the row and adding it back shorter (a second-by-second count is the reference)."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from slotbroker.engine.snapshot import AllocationSnap
from slotbroker.services.find_slot.row_changes import cut_to_tails


def usage(
    added: list[AllocationSnap], removed: list[AllocationSnap]
) -> Counter[tuple[int, str, int | None, int]]:
    """(provider, class, tag, second) -> amount added minus amount removed, zeros dropped."""
    out: Counter[tuple[int, str, int | None, int]] = Counter()
    for sign, rows in ((1, added), (-1, removed)):
        for r in rows:
            for t in range(r.start_s, r.end_s):
                out[(r.provider_id, r.resource_class, r.vlan_tag, t)] += sign * r.amount
    return Counter({k: v for k, v in out.items() if v})


rows = st.builds(
    lambda p, c, a, s, d, tag: AllocationSnap(p, c, a, s, s + d, tag),
    st.integers(1, 3),
    st.sampled_from(["VCPU", "VLAN"]),
    st.integers(1, 2),
    st.integers(0, 20),
    st.integers(1, 15),
    st.one_of(st.none(), st.integers(100, 101)),
)


@given(st.lists(rows, max_size=8), st.lists(rows, max_size=8), st.data())
def test_tails_change_the_calendar_as_the_rows_they_replace(
    added: list[AllocationSnap], removed: list[AllocationSnap], data: st.DataObject
) -> None:
    # early ends: some removed rows come back shorter among the additions
    for r in removed:
        if r.end_s - r.start_s > 1 and data.draw(st.booleans()):
            added.append(
                AllocationSnap(
                    r.provider_id,
                    r.resource_class,
                    r.amount,
                    r.start_s,
                    data.draw(st.integers(r.start_s + 1, r.end_s - 1)),
                    r.vlan_tag,
                )
            )
    plus, minus = cut_to_tails(added, removed)
    assert usage(plus, minus) == usage(added, removed)
    assert len(plus) + len(minus) <= len(added) + len(removed)
    assert all(r.vlan_tag is None for r in set(removed) - set(minus) - set(added))


def test_an_early_end_becomes_its_tail() -> None:
    row = AllocationSnap(1, "VCPU", 1, 0, 100)
    cut = AllocationSnap(1, "VCPU", 1, 0, 10)
    assert cut_to_tails([cut], [row]) == ([], [AllocationSnap(1, "VCPU", 1, 10, 100)])
    tagged = AllocationSnap(1, "VLAN", 1, 0, 100, 101)
    short_tag = AllocationSnap(1, "VLAN", 1, 0, 10, 101)
    assert cut_to_tails([short_tag], [tagged]) == ([short_tag], [tagged])  # tags stay intervals
