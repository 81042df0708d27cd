"""Problem members beyond RFC 9457's own reach the caller: candidates, max_end, running_jobs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from slotbroker.client import AmbiguousError, Client, JobsRunningError, LeaseTooLongError, RetryPolicy


def client_answering(status: int, body: dict[str, Any]) -> Client:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers={"Content-Type": "application/problem+json"})

    return Client("http://broker", "sb_x", transport=httpx.MockTransport(answer), retry=RetryPolicy.none())


def problem(status: int, code: str, **members: Any) -> dict[str, Any]:
    return {"type": "about:blank", "title": "t", "status": status, "detail": "d", "code": code, **members}


def test_ambiguous_prefix_lists_the_candidates() -> None:
    api = client_answering(409, problem(409, "ambiguous", candidates=["a1b2c3-1", "a1b2c3-2"]))
    with pytest.raises(AmbiguousError) as info:
        api.get_lease("a1b2c3")
    assert info.value.candidates == ["a1b2c3-1", "a1b2c3-2"]
    assert info.value.extensions == {"candidates": ["a1b2c3-1", "a1b2c3-2"]}


def test_refused_extension_says_how_far() -> None:
    api = client_answering(403, problem(403, "lease_too_long", max_end="2030-01-02T03:04:05Z"))
    with pytest.raises(LeaseTooLongError) as info:
        api.update_lease("l1", {"generation": 1, "end": "2031-01-01T00:00:00Z"})
    assert info.value.max_end == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_cancel_with_running_jobs_names_them_and_force_is_sent() -> None:
    seen: list[httpx.URL] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(409, json=problem(409, "jobs_running", running_jobs=["j1", "j2"]))

    api = Client("http://broker", "sb_x", transport=httpx.MockTransport(answer), retry=RetryPolicy.none())
    with pytest.raises(JobsRunningError) as info:
        api.cancel_lease("l1", force=True)
    assert info.value.running_jobs == ["j1", "j2"]
    assert seen[0].params["force"] == "true"


def test_no_members_no_extensions() -> None:
    with pytest.raises(AmbiguousError) as info:
        client_answering(409, problem(409, "ambiguous", max_end=None)).get_offer("x")
    assert info.value.extensions == {}
    assert (info.value.candidates, info.value.max_end, info.value.running_jobs) == ([], None, [])
