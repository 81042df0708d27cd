"""Retrying a whole transaction that lost to concurrent writers: one loop, for threads and event loops.

A deadlock, a serialization failure, a lock timeout or SQLite's "database is locked" says nothing about
the request: the same transaction may commit on a second go. The attempt is retried after a jittered,
exponentially growing pause (so the losers of one race spread out), a bounded number of times, then the
caller hears ``ConcurrentUpdate``. Everything else, a capacity conflict above all, is an answer and is
raised at once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from slotbroker.domain.errors import ConcurrentUpdate
from slotbroker.store.errors import is_retryable

T = TypeVar("T")

MAX_ATTEMPTS = 5
GAVE_UP = "gave up after {} attempts lost to concurrent writers; retry later"


def backoff_s(n: int) -> float:
    """The pause after the n-th lost attempt: 2, 4, 8, ... ms, times 0.5-1.5."""
    return float(0.002 * 2 ** (n - 1) * (0.5 + random.random()))


def retrying(attempt: Callable[[int], T], max_attempts: int = MAX_ATTEMPTS) -> T:
    """Run ``attempt(n)`` (one whole transaction, n counting from 1) until it returns, retrying the
    transient failures (``is_retryable``) up to ``max_attempts`` times in all, then raise
    ``ConcurrentUpdate``."""
    last: BaseException | None = None
    for n in range(1, max_attempts + 1):
        try:
            return attempt(n)
        except Exception as exc:
            if not is_retryable(exc):
                raise
            last = exc
            time.sleep(backoff_s(n))
    raise ConcurrentUpdate(GAVE_UP.format(max_attempts)) from last


async def retrying_async(attempt: Callable[[int], Awaitable[T]], max_attempts: int = MAX_ATTEMPTS) -> T:
    """``retrying`` for an attempt that runs on the event loop: the pauses do not block the loop."""
    last: BaseException | None = None
    for n in range(1, max_attempts + 1):
        try:
            return await attempt(n)
        except Exception as exc:
            if not is_retryable(exc):
                raise
            last = exc
            await asyncio.sleep(backoff_s(n))
    raise ConcurrentUpdate(GAVE_UP.format(max_attempts)) from last
