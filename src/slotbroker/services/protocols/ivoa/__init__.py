"""IVOA ExecutionBroker (Calycopis v1.0) on top of offers and leases.

``request`` reads an ``ExecutionRequest`` into a find-slot request, ``phases`` maps offers and leases to
session phases and reads phase updates, ``service`` holds the use cases and renders the answers. See
docs/ivoa.md for every default and mapping decision.
"""

from slotbroker.services.protocols.ivoa.errors import IvoaInvalid, IvoaRefused
from slotbroker.services.protocols.ivoa.iso8601 import parse_start_interval
from slotbroker.services.protocols.ivoa.phases import read_update, session_phase
from slotbroker.services.protocols.ivoa.present import message
from slotbroker.services.protocols.ivoa.request import read_request
from slotbroker.services.protocols.ivoa.service import IvoaService
from slotbroker.services.protocols.ivoa.vocabulary import (
    CURRENT_BASE,
    LEGACY_BASE,
    SESSION_KIND,
    canonical_kind,
)

__all__ = [
    "CURRENT_BASE",
    "LEGACY_BASE",
    "SESSION_KIND",
    "IvoaInvalid",
    "IvoaRefused",
    "IvoaService",
    "canonical_kind",
    "message",
    "parse_start_interval",
    "read_request",
    "read_update",
    "session_phase",
]
