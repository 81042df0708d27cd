"""Typed exceptions for RFC 9457 problem responses.

Every 4xx/5xx answer of the API is a problem body with a stable ``code``; :func:`error_from_response`
turns it into the most specific subclass of :class:`SlotbrokerAPIError` (by ``code`` first, then by
status), so callers can ``except ConcurrentUpdateError`` instead of comparing strings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from slotbroker.client.retry import parse_retry_after


@dataclass(frozen=True)
class FieldProblem:
    """One offending field: ``pointer`` is an RFC 6901 JSON pointer (``#/query/NAME`` for parameters)."""

    pointer: str
    detail: str


class SlotbrokerAPIError(Exception):
    """The API answered with an error status (a problem body, or something else a proxy sent)."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        errors: list[FieldProblem] | None = None,
        *,
        title: str = "",
        type: str = "about:blank",
        instance: str | None = None,
        retry_after: float | None = None,
        attempts: int = 1,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.errors: list[FieldProblem] = list(errors or [])
        self.title = title
        self.type = type
        self.instance = instance
        self.retry_after = retry_after
        self.attempts = attempts
        self.extensions: dict[str, Any] = dict(extensions or {})

    @property
    def candidates(self) -> list[str]:
        """``ambiguous``: the full ids an id prefix or a name matches."""
        return [str(c) for c in self.extensions.get("candidates") or []]

    @property
    def max_end(self) -> datetime | None:
        """A refused extension: the furthest end the lease can be extended to now."""
        value = self.extensions.get("max_end")
        return datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else None

    @property
    def running_jobs(self) -> list[str]:
        """``jobs_running``: the lease's unfinished jobs (cancel again with ``force=True``)."""
        return [str(j) for j in self.extensions.get("running_jobs") or []]

    @property
    def pointers(self) -> list[str]:
        """The JSON pointers of every offending field."""
        return [e.pointer for e in self.errors]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, code={self.code!r}, detail={self.detail!r})"


class ValidationError(SlotbrokerAPIError):
    """400/422: the request is malformed or invalid; ``errors`` name each field by JSON pointer."""


class AuthenticationError(SlotbrokerAPIError):
    """401: missing, unknown, revoked or expired token."""


class PermissionDeniedError(SlotbrokerAPIError):
    """403: the token's role may not do this."""


class NotFoundError(SlotbrokerAPIError):
    """404: no such provider, class, trait, link or port."""


class ConflictError(SlotbrokerAPIError):
    """409: the request conflicts with the current state (``already_exists``, ``in_use`` ...)."""


class ConcurrentUpdateError(ConflictError):
    """409 ``concurrent_update``: the generation you sent is stale; re-read and retry."""


class CapacityConflictError(ConflictError):
    """409 ``capacity_conflict``: the change would leave allocations without capacity."""


class InvalidStateError(ConflictError):
    """409 ``invalid_state``: the lease is not PENDING or ACTIVE any more (ended, cancelled ...)."""


class OutsideExtensionWindowError(ConflictError):
    """409 ``outside_extension_window``: a lease may be extended only shortly before its end."""


class OfferConflictError(ConflictError):
    """409: the offer cannot be accepted or rejected any more."""


class OfferExpiredError(OfferConflictError):
    """409 ``offer_expired``: the offer's hold expired; its capacity may be gone. Ask for new offers."""


class OfferNotOpenError(OfferConflictError):
    """409 ``offer_not_open``: the offer was already accepted or rejected (or a sibling was accepted)."""


class AllocationRequestClaimedError(ConflictError):
    """409 ``allocation_request_claimed``: that allocation request id was claimed already."""


class QuotaExceededError(PermissionDeniedError):
    """403 ``quota_exceeded``: the booking would take the project over one of its quotas."""


class LeaseTooLongError(PermissionDeniedError):
    """403 ``lease_too_long``: the lease would last longer than the server allows."""


class AllocationRequestNotFoundError(NotFoundError):
    """404 ``allocation_request_not_found``: no such allocation request id (or not yours)."""


class GoneError(SlotbrokerAPIError):
    """410: the thing existed but is gone for good."""


class AllocationRequestExpiredError(GoneError):
    """410 ``allocation_request_expired``: search again (find-slot or allocation candidates)."""


class AmbiguousError(ConflictError):
    """409 ``ambiguous``: an id prefix or a name matches several objects; ``candidates`` lists them."""


class JobsRunningError(ConflictError):
    """409 ``jobs_running``: the lease has unfinished jobs (``running_jobs``); cancel with ``force=True``."""


class RateLimitedError(SlotbrokerAPIError):
    """429: too many requests for this token; ``retry_after`` says how long to wait."""


class UnavailableError(SlotbrokerAPIError):
    """503: overloaded or not ready; ``retry_after`` may say how long to wait."""


BY_CODE: dict[str, type[SlotbrokerAPIError]] = {
    "validation_error": ValidationError,
    "malformed_body": ValidationError,
    "concurrent_update": ConcurrentUpdateError,
    "capacity_conflict": CapacityConflictError,
    "rate_limited": RateLimitedError,
    "invalid_state": InvalidStateError,
    "outside_extension_window": OutsideExtensionWindowError,
    "offer_expired": OfferExpiredError,
    "offer_not_open": OfferNotOpenError,
    "allocation_request_claimed": AllocationRequestClaimedError,
    "quota_exceeded": QuotaExceededError,
    "lease_too_long": LeaseTooLongError,
    "allocation_request_not_found": AllocationRequestNotFoundError,
    "allocation_request_expired": AllocationRequestExpiredError,
    "ambiguous": AmbiguousError,
    "jobs_running": JobsRunningError,
}
STANDARD_MEMBERS = frozenset({"type", "title", "status", "detail", "code", "instance", "errors"})
BY_STATUS: dict[int, type[SlotbrokerAPIError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    410: GoneError,
    422: ValidationError,
    429: RateLimitedError,
    503: UnavailableError,
}
FALLBACK_CODES = {429: "rate_limited", 503: "unavailable"}


def problem_of(response: httpx.Response) -> dict[str, Any] | None:
    """The problem body as a dict, or ``None`` when the body is not a JSON object."""
    try:
        data = json.loads(response.content)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def error_class(status: int, code: str) -> type[SlotbrokerAPIError]:
    cls = BY_CODE.get(code)
    # A code only refines within its status family: a 409 "validation_error" is still a conflict.
    if cls is not None and (BY_STATUS.get(status) is None or issubclass(cls, BY_STATUS[status])):
        return cls
    return BY_STATUS.get(status, SlotbrokerAPIError)


def error_from_response(response: httpx.Response, *, attempts: int = 1) -> SlotbrokerAPIError:
    status = response.status_code
    body = problem_of(response) or {}
    code = body.get("code")
    if not isinstance(code, str):
        code = FALLBACK_CODES.get(status, f"http_{status}")
    detail = body.get("detail")
    if not isinstance(detail, str):
        detail = response.text[:500] or response.reason_phrase
    errors = [
        FieldProblem(pointer=str(e.get("pointer", "")), detail=str(e.get("detail", "")))
        for e in body.get("errors") or []
        if isinstance(e, dict)
    ]
    instance = body.get("instance")
    return error_class(status, code)(
        status,
        code,
        detail,
        errors,
        title=str(body.get("title", response.reason_phrase)),
        type=str(body.get("type", "about:blank")),
        instance=instance if isinstance(instance, str) else None,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        attempts=attempts,
        extensions={k: v for k, v in body.items() if k not in STANDARD_MEMBERS and v is not None},
    )
