"""Validation errors of the request model name the offending field."""

from __future__ import annotations

from typing import Any

import pytest

from slotbroker.domain.errors import ValidationFailed
from slotbroker.domain.request import parse_request


def doc(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "components": [{"name": "a", "resources": {"VCPU": 2}}],
        "earliest_start": "2025-01-01T00:00:00Z",
        "latest_end": "2025-01-02T00:00:00Z",
        "duration": "PT4H",
    }
    base.update(over)
    return base


def problems(data: dict[str, Any], **kw: Any) -> list[tuple[str, str]]:
    with pytest.raises(ValidationFailed) as exc:
        parse_request(data, **kw)
    return [(e.pointer, e.detail) for e in exc.value.errors]


def test_valid_request_converts_times() -> None:
    r = parse_request(doc())
    assert r.latest_end_s - r.range_start_s == 86400
    assert r.min_duration_s == 4 * 3600
    assert r.latest_start_s == r.latest_end_s - 4 * 3600


def test_iso_interval_for_the_start() -> None:
    r = parse_request(doc(earliest_start=None, latest_end=None, start_within="2025-01-01T00:00Z/PT48H"))
    assert r.latest_start_s - r.range_start_s == 48 * 3600
    assert r.latest_end_s == r.latest_start_s + 4 * 3600


def test_end_before_start() -> None:
    ((_p, d),) = problems(doc(latest_end="2024-12-31T00:00:00Z"))
    assert "latest_end" in d


@pytest.mark.parametrize("value", [0, -5, "PT0S"])
def test_duration_must_be_positive(value: object) -> None:
    ((p, d),) = problems(doc(duration=value))
    assert p == "/duration"
    assert "duration" in d
    assert "positive" in d


def test_duration_must_fit_range() -> None:
    ((_, d),) = problems(doc(duration="P2D"))
    assert d.startswith("duration:")
    assert "does not fit" in d


def test_range_too_long_and_configurable() -> None:
    far = doc(latest_end="2025-06-01T00:00:00Z")
    ((_, d),) = problems(far)
    assert "latest_end" in d
    assert "maximum 90.0 days" in d
    ((_, d),) = problems(doc(), max_range_s=3600 * 5)
    assert "longer than the maximum" in d


def test_unknown_resource_class() -> None:
    ((p, d),) = problems(doc(components=[{"name": "a", "resources": {"VCPUS": 2}}]))
    assert p == "/components/0/resources"
    assert "unknown resource class 'VCPUS'" in d


def test_unregistered_custom_class() -> None:
    data = doc(components=[{"name": "a", "resources": {"CUSTOM_X": 1}}])
    assert parse_request(data).components[0].resources == {"CUSTOM_X": 1}
    ((_, d),) = problems(data, custom_classes=frozenset({"CUSTOM_Y"}))
    assert "not registered" in d


def test_amount_at_least_one() -> None:
    ((_, d),) = problems(doc(components=[{"name": "a", "resources": {"VCPU": 0}}]))
    assert "resources.VCPU" in d
    assert ">= 1" in d


@pytest.mark.parametrize("limit", [0, 51])
def test_limit_out_of_range(limit: int) -> None:
    ((p, d),) = problems(doc(limit=limit))
    assert p == "/limit"
    assert d.startswith("limit")


@pytest.mark.parametrize("bad", ["P4X", "4 hours", "1H"])
def test_malformed_iso_duration(bad: str) -> None:
    ((p, d),) = problems(doc(duration=bad))
    assert p == "/duration"
    assert "ISO 8601" in d


def test_malformed_iso_interval() -> None:
    ((_, d),) = problems(doc(earliest_start=None, latest_end=None, start_within="yesterday/tomorrow"))
    assert d.startswith("start_within")


def test_naive_datetime_rejected() -> None:
    ((p, _),) = problems(doc(earliest_start="2025-01-01T00:00:00"))
    assert p == "/earliest_start"


def test_names_unique_and_references_exist() -> None:
    ((_, d),) = problems(doc(components=[{"name": "a", "resources": {"VCPU": 1}}] * 2))
    assert "used twice" in d
    ((_, d),) = problems(doc(links=[{"a": "a", "b": "zz", "bandwidth_gbps": 1}]))
    assert "links: unknown component 'zz'" in d


def test_extra_fields_forbidden() -> None:
    ((p, _),) = problems(doc(colour="blue"))
    assert p == "/colour"


def test_elastic_and_duration_range() -> None:
    data = doc(
        duration=None,
        min_duration="PT1H",
        max_duration="PT2H",
        components=[{"name": "a", "resources": {"VCPU": 1}, "elastic": {"MEMORY_MB": {"min": 4, "max": 8}}}],
    )
    r = parse_request(data)
    assert r.components[0].minimum() == {"VCPU": 1, "MEMORY_MB": 4}
    ((_, d),) = problems(doc(duration=None, min_duration="PT3H", max_duration="PT2H"))
    assert "max_duration" in d
