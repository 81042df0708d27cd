"""A validation problem's ``detail`` spells out the first offending field, so a client that prints only
``detail`` still says what to fix."""

from __future__ import annotations

import pytest

from slotbroker.domain.errors import FieldError, ValidationFailed, problems_detail
from slotbroker.domain.request import parse_request


def test_one_problem_names_it_without_repeating_the_field() -> None:
    errors = [FieldError("/components/0/count", "components.0.count: Input should be >= 1")]
    assert problems_detail("the request", errors) == (
        "the request has 1 problem: components.0.count: Input should be >= 1"
    )


def test_a_detail_without_its_field_gets_the_pointer() -> None:
    errors = [FieldError("/hosts/0/kind", "unknown kind 'hots'"), FieldError("/x", "bad")]
    assert problems_detail("the topology document", errors) == (
        "the topology document has 2 problems; the first: /hosts/0/kind: unknown kind 'hots'"
    )


def test_a_parsed_request_says_which_field() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_request(
            {"components": [{"name": "w", "count": 0, "resources": {"VCPU": 1}}], "duration": "PT1H"}
        )
    assert caught.value.detail.startswith("the request has 1 problem: components.0.count")
    assert [e.pointer for e in caught.value.errors] == ["/components/0/count"]
