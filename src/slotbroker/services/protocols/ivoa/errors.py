"""The two ways an IVOA call fails: a document that cannot be read (400) and a refused update (409)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slotbroker.domain.errors import SlotbrokerError


@dataclass
class IvoaInvalid(SlotbrokerError):
    """The document cannot be read (wrong type, unknown field or kind, bad ISO 8601, dangling name):
    HTTP 400 with every offending field's pointer."""

    code: str = "validation_error"


@dataclass
class IvoaRefused(SlotbrokerError):
    """A session update that cannot be done (expired, not open, not accepted): HTTP 409, with the
    session as it now is and an IVOA ``result: NO`` message."""

    code: str = "conflict"
    session: dict[str, Any] = field(default_factory=dict)
