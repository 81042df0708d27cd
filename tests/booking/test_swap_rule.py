"""The one swap rule (services/booking/alternates.py) that offers, allocation requests and lease updates
follow: only a host can be swapped, the first conflicting one, for the first stand-in neither tried nor
in use."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from slotbroker.domain.errors import FieldError
from slotbroker.services.booking.alternates import conflicting_owner, next_alternate


def err(k: int) -> FieldError:
    return FieldError(f"/items/{k}/amount", "no room")


def test_the_first_conflicting_host_is_the_one_to_swap() -> None:
    owners = ["a", "a", "b", None]
    assert conflicting_owner([err(2), err(0)], owners) == "b"
    assert conflicting_owner([err(1)], owners) == "a"


def test_a_conflict_on_a_shared_item_leaves_nothing_to_swap() -> None:
    owners = ["a", "b", None]  # item 2 is a link
    assert conflicting_owner([err(0), err(2)], owners) is None
    assert conflicting_owner([err(2), err(0)], owners) is None


def test_an_error_outside_the_items_leaves_nothing_to_swap() -> None:
    assert conflicting_owner([FieldError("/start", "past")], ["a"]) is None
    assert conflicting_owner([err(7)], ["a"]) is None
    assert conflicting_owner([], ["a"]) is None


def test_the_next_stand_in_is_untried_and_unused_and_is_marked_tried() -> None:
    tried = {"x"}
    assert next_alternate(["x", "h1", "y", "z"], tried, in_use={"h1", "y"}) == "z"
    assert tried == {"x", "z"}
    assert next_alternate(["x", "z"], tried, in_use=set()) is None


@given(
    st.lists(st.sampled_from("abcdefgh"), max_size=8),
    st.sets(st.sampled_from("abcdefgh")),
    st.sets(st.sampled_from("abcdefgh")),
)
def test_next_alternate_matches_a_plain_filter(cands: list[str], tried: set[str], in_use: set[str]) -> None:
    expected = next((c for c in cands if c not in tried and c not in in_use), None)
    before = set(tried)
    got = next_alternate(cands, tried, in_use)
    assert got == expected
    assert tried == (before if got is None else before | {got})
