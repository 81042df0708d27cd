"""A typed Python client for the slotbroker HTTP API (sync and async), on httpx.

>>> from slotbroker.client import Client
>>> with Client("http://localhost:8000", token="sb_...") as api:  # doctest: +SKIP
...     for provider in api.iter_providers(kind=["site"]):
...         print(provider.name, provider.generation)

See docs/client.md for errors and retry semantics.
"""

from slotbroker.client.clients import AsyncClient, Client
from slotbroker.client.endpoints import Health, Ready
from slotbroker.client.errors import (
    AuthenticationError,
    CapacityConflictError,
    ConcurrentUpdateError,
    ConflictError,
    FieldProblem,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    SlotbrokerAPIError,
    UnavailableError,
    ValidationError,
)
from slotbroker.client.retry import RetryPolicy, parse_retry_after

__all__ = [
    "AsyncClient",
    "AuthenticationError",
    "CapacityConflictError",
    "Client",
    "ConcurrentUpdateError",
    "ConflictError",
    "FieldProblem",
    "Health",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "Ready",
    "RetryPolicy",
    "SlotbrokerAPIError",
    "UnavailableError",
    "ValidationError",
    "parse_retry_after",
]
