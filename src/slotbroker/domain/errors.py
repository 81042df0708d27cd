"""Errors the domain and services raise, each with a stable snake_case ``code``.

Adapters map them to transport details (HTTP status, exit codes); the domain only says *what* went
wrong and *which field*, as a JSON pointer, so a client can highlight it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FieldError:
    """One offending field: ``pointer`` is an RFC 6901 JSON pointer into the request document."""

    pointer: str
    detail: str


def pointer(*parts: str | int) -> str:
    """Build a JSON pointer from path parts, escaping ``~`` and ``/`` as RFC 6901 says."""
    escaped = (str(p).replace("~", "~0").replace("/", "~1") for p in parts)
    return "".join("/" + p for p in escaped)


def item_index(pointer: str) -> int | None:
    """The item a claim error points at: ``N`` of ``/items/N/...``; None for any other pointer."""
    parts = pointer.split("/")
    if len(parts) > 2 and parts[1] == "items" and parts[2].isdigit():
        return int(parts[2])
    return None


@dataclass
class SlotbrokerError(Exception):
    """Base of every expected failure; anything else reaching an adapter is a bug."""

    detail: str
    errors: list[FieldError] = field(default_factory=list)
    code: str = "error"
    # Extra members of the problem (RFC 9457 extension members): what a client needs to act on the error
    # without parsing ``detail`` (the candidates of an ambiguous id, the furthest end an extension can reach).
    extensions: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.detail)


@dataclass
class ValidationFailed(SlotbrokerError):
    code: str = "validation_error"


def problems_detail(what: str, errors: list[FieldError]) -> str:
    """A problem's ``detail`` for ``errors`` found in ``what``: the first one spelled out, so a client
    that prints only ``detail`` (a log line, a CLI without ``errors[]``) still says what to fix."""
    if not errors:
        return f"{what} is invalid"
    first = errors[0]
    named = first.detail.startswith(first.pointer.lstrip("/").replace("/", "."))  # or no pointer at all
    text = first.detail if named else f"{first.pointer}: {first.detail}"
    if len(errors) == 1:
        return f"{what} has 1 problem: {text}"
    return f"{what} has {len(errors)} problems; the first: {text}"


@dataclass
class NotFound(SlotbrokerError):
    code: str = "not_found"


@dataclass
class AlreadyExists(SlotbrokerError):
    code: str = "already_exists"


@dataclass
class Ambiguous(SlotbrokerError):
    """An id prefix or a name matches more than one object; ``extensions["candidates"]`` lists their ids."""

    code: str = "ambiguous"


@dataclass
class ConcurrentUpdate(SlotbrokerError):
    """A compare-and-swap lost: the caller's generation is stale. Re-read and retry."""

    code: str = "concurrent_update"


@dataclass
class InUse(SlotbrokerError):
    """The object still carries allocations or dependants and cannot be removed or shrunk."""

    code: str = "in_use"


@dataclass
class CapacityConflict(SlotbrokerError):
    code: str = "capacity_conflict"


@dataclass
class Forbidden(SlotbrokerError):
    code: str = "forbidden"


@dataclass
class Unauthorized(SlotbrokerError):
    code: str = "unauthorized"
