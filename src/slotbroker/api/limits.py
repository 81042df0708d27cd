"""Backpressure: per-token rate limits (429) and a bound on requests in flight (503).

A burst of automated clients (the FABRIC roadmap's worry) then slows itself down on ``Retry-After``
instead of queueing the whole service to death. Limits are per process: with N replicas the fleet
admits N times as much, which is what a load balancer in front expects.

Event streams (``GET .../events``, server-sent events that stay open for minutes) have a bound of their
own: counted with ordinary requests, a few dozen watchers would hold every in-flight slot and turn all
other requests away with 503s.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from dataclasses import dataclass, field

from slotbroker.api.content import ASGIApp, Receive, Scope, Send
from slotbroker.api.problems import problem_response

EXEMPT = ("/healthz", "/readyz", "/metrics")
# Counted in flight but not charged to the token's rate: each API call an MCP tool makes is (same token).
RATE_FREE = ("/mcp",)


@dataclass
class TokenBucket:
    rate: float
    burst: int
    tokens: float = 0.0
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)

    def idle(self, now: float) -> bool:
        """Full again: forgetting it changes nothing."""
        return self.tokens + (now - self.stamp) * self.rate >= self.burst

    def take(self, now: float) -> float:
        """Take one token; return 0 if granted, else the seconds until one is available."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class RateLimiter:
    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self.buckets: dict[str, TokenBucket] = {}
        self.lock = threading.Lock()

    def check(self, key: str) -> float:
        now = time.monotonic()
        with self.lock:
            bucket = self.buckets.get(key)
            if bucket is None:
                if len(self.buckets) >= self.max_keys:  # bound memory: forget buckets that refilled
                    self.buckets = {k: b for k, b in self.buckets.items() if not b.idle(now)}
                bucket = self.buckets[key] = TokenBucket(self.rate, self.burst, stamp=now)
            return bucket.take(now)


def is_stream(scope: Scope) -> bool:
    """A long-lived event stream (the only ones: ``GET /v1/jobs/{id}/events``)."""
    return scope.get("method") == "GET" and str(scope["path"]).endswith("/events")


class LimitsMiddleware:
    def __init__(
        self, app: ASGIApp, *, max_in_flight: int, rate_per_s: float, burst: int, max_streams: int = 256
    ) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self.max_streams = max_streams
        self.streams = 0
        self.limiter = RateLimiter(rate_per_s, burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT:
            await self.app(scope, receive, send)
            return
        auth = next((v for k, v in scope["headers"] if k.lower() == b"authorization"), None)
        client = scope.get("client") or ("?", 0)
        key = "t:" + hashlib.sha256(auth).hexdigest()[:32] if auth else f"ip:{client[0]}"
        wait = 0.0 if scope["path"] in RATE_FREE else self.limiter.check(key)
        if wait > 0:
            response = problem_response(
                429,
                "rate_limited",
                "too many requests for this token; slow down",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
            await response(scope, receive, send)
            return
        if is_stream(scope):
            await self._stream(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            response = problem_response(
                503, "overloaded", "too many requests in flight; retry shortly", headers={"Retry-After": "1"}
            )
            await response(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.streams >= self.max_streams:
            response = problem_response(
                503,
                "overloaded",
                f"too many open event streams ({self.max_streams}); poll the job or retry shortly",
                headers={"Retry-After": "5"},
            )
            await response(scope, receive, send)
            return
        self.streams += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.streams -= 1
