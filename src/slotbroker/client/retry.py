"""Retry policy: exponential backoff with full jitter, ``Retry-After``, and idempotency rules.

The decision logic lives here, free of I/O, so the sync and async clients share it and only differ in
how they send and sleep.

What is retried:

* 429 and 503 answers, after ``Retry-After`` when the server sends one, else after a jittered backoff;
* connection failures *before the request was sent* (``httpx.ConnectError``, ``ConnectTimeout``,
  ``PoolTimeout``);
* for idempotent methods only (GET, PUT, DELETE ...): any other transport failure too, such as a read
  timeout or a dropped connection.

A POST is retried only when the server certainly did not process it: a connection that was never
made, or a 429/503 problem whose ``code`` shows our own limiter refused it before the route ran
(``rate_limited``, ``overloaded``). Never after a read timeout or a dropped response: the POST may
have been applied, and doing it twice is not safe.
"""

from __future__ import annotations

import email.utils
import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({429, 503})
# Problem codes only the limits middleware sends, before any route runs: the request was not processed.
REFUSED_CODES = frozenset({"rate_limited", "overloaded"})
# Transport errors raised before a single byte of the request went out.
NOT_SENT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
# Transport errors after which an idempotent request may be sent again.
IDEMPOTENT_RETRY_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)


def full_jitter(cap: float) -> float:
    """A uniformly random delay in [0, cap] (AWS "full jitter")."""
    return random.uniform(0.0, cap)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try.

    ``max_attempts`` counts the first try (1 disables retries). ``total_timeout`` bounds the time
    spent across all attempts and waits: a retry whose wait would overrun it is not made.
    ``max_retry_after`` is the longest server-advertised wait we accept; a longer ``Retry-After``
    is surfaced at once as the error instead.
    """

    max_attempts: int = 4
    backoff_base: float = 0.25
    backoff_max: float = 8.0
    total_timeout: float = 60.0
    max_retry_after: float = 30.0
    jitter: Callable[[float], float] = field(default=full_jitter, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    @classmethod
    def none(cls) -> RetryPolicy:
        """Never retry."""
        return cls(max_attempts=1)

    def backoff(self, retry_number: int) -> float:
        """The jittered wait before retry ``retry_number`` (1 for the first retry)."""
        cap = min(self.backoff_max, self.backoff_base * 2 ** (retry_number - 1))
        return self.jitter(cap)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds to wait: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def refused_before_processing(response: httpx.Response) -> bool:
    """True when the 429/503 came from the limiter, i.e. the route never ran."""
    if response.status_code not in RETRY_STATUSES:
        return False
    try:
        body = json.loads(response.content)
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("code") in REFUSED_CODES


@dataclass
class Attempts:
    """The retry state of one logical request; ``after_*`` return the wait before the next try, or None."""

    policy: RetryPolicy
    method: str
    retryable: bool = True
    count: int = 0
    spent: float = 0.0

    @property
    def idempotent(self) -> bool:
        return self.method.upper() in IDEMPOTENT_METHODS

    def started(self) -> None:
        self.count += 1

    def after_response(self, response: httpx.Response, elapsed: float) -> float | None:
        self.spent += elapsed
        if response.status_code not in RETRY_STATUSES:
            return None
        if not self.idempotent and not refused_before_processing(response):
            return None
        advertised = parse_retry_after(response.headers.get("Retry-After"))
        if advertised is not None:
            if advertised > self.policy.max_retry_after:
                return None
            return self._wait(advertised)
        return self._wait(self.policy.backoff(self.count))

    def after_error(self, error: httpx.TransportError, elapsed: float) -> float | None:
        self.spent += elapsed
        if isinstance(error, NOT_SENT_ERRORS) or (
            self.idempotent and isinstance(error, IDEMPOTENT_RETRY_ERRORS)
        ):
            return self._wait(self.policy.backoff(self.count))
        return None

    def _wait(self, delay: float) -> float | None:
        if not self.retryable or self.count >= self.policy.max_attempts:
            return None
        if self.spent + delay > self.policy.total_timeout:
            return None
        self.spent += delay
        return delay
