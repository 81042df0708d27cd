"""``services/retry.py``: the one retry loop, in a thread and on an event loop."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from slotbroker.domain.errors import CapacityConflict, ConcurrentUpdate
from slotbroker.services import retry


class _Deadlock(Exception):
    sqlstate = "40P01"


def _lost() -> OperationalError:
    return OperationalError("COMMIT", None, _Deadlock("deadlock detected"))


@pytest.fixture(autouse=True)
def _no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "backoff_s", lambda n: 0.0)


def test_a_lost_transaction_is_run_again_until_it_commits() -> None:
    seen: list[int] = []

    def attempt(n: int) -> str:
        seen.append(n)
        if n < 3:
            raise _lost()
        return "done"

    assert retry.retrying(attempt, 5) == "done"
    assert seen == [1, 2, 3]


def test_it_gives_up_after_max_attempts_with_concurrent_update() -> None:
    seen: list[int] = []

    def attempt(n: int) -> None:
        seen.append(n)
        raise _lost()

    with pytest.raises(ConcurrentUpdate) as caught:
        retry.retrying(attempt, 3)
    assert seen == [1, 2, 3]
    assert isinstance(caught.value.__cause__, OperationalError)


@pytest.mark.parametrize(
    "error",
    [CapacityConflict("full", []), IntegrityError("INSERT", None, Exception("unique uuid")), ValueError("x")],
)
def test_answers_and_other_errors_are_raised_at_once(error: Exception) -> None:
    seen: list[int] = []

    def attempt(n: int) -> None:
        seen.append(n)
        raise error

    with pytest.raises(type(error)):
        retry.retrying(attempt, 5)
    assert seen == [1]


def test_the_async_loop_retries_alike() -> None:
    seen: list[int] = []

    async def attempt(n: int) -> int:
        seen.append(n)
        if n < 2:
            raise _lost()
        return n

    assert asyncio.run(retry.retrying_async(attempt, 5)) == 2

    async def never(n: int) -> None:
        raise _lost()

    with pytest.raises(ConcurrentUpdate):
        asyncio.run(retry.retrying_async(never, 2))
    assert seen == [1, 2]


def test_services_use_no_sqlalchemy_in_the_claim_service() -> None:
    """``services/booking/claims.py`` and ``services/retry.py`` ask ``store`` what an error means."""
    import ast
    from pathlib import Path

    import slotbroker.services.booking.claims as claims

    for module in (claims, retry):
        tree = ast.parse(Path(str(module.__file__)).read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [n for n in names if n.split(".")[0] == "sqlalchemy"], module.__name__
