"""The limits every booking obeys, whichever path takes the capacity: the times the broker can hold, and
the policy (how long a booking may last, how long a hold may keep capacity).

Why one module: claims, leases, holds, offers, allocation requests, IVOA and FABRIC bookings all end in
``ClaimService``; if each path carried its own copy of a rule, one of them would drift (and did: the
claims endpoint booked leases the leases endpoint refused). The adapters and services call these
functions; nobody restates the bounds.

Supported times are ``[TIME_MIN_S, TIME_MAX_S]``, 1970-01-01 to 2500-01-01 UTC, in integer epoch seconds
(docs/decisions/0002-integer-seconds.md). The calendar engine packs a time into fewer than 34 bits
(``engine/steps.py``), and Python's ``datetime`` cannot show a year past 9999; a round date well inside
both keeps every stored time printable and searchable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from slotbroker.domain.errors import FieldError, Forbidden

TIME_MIN_S = 0  # 1970-01-01T00:00:00Z
TIME_MAX_S = 16_725_225_600  # 2500-01-01T00:00:00Z
TIME_MIN = datetime.fromtimestamp(TIME_MIN_S, UTC)
TIME_MAX = datetime.fromtimestamp(TIME_MAX_S, UTC)


def in_range(seconds: int) -> bool:
    return TIME_MIN_S <= seconds <= TIME_MAX_S


def time_problems(*times: tuple[str, int | None]) -> list[FieldError]:
    """A ``FieldError`` for each (pointer, epoch seconds) outside the supported range; None is fine."""
    return [
        FieldError(
            at, f"{_show(t)} is outside the supported range {_show(TIME_MIN_S)} to {_show(TIME_MAX_S)}"
        )
        for at, t in times
        if t is not None and not TIME_MIN_S <= t <= TIME_MAX_S
    ]


def check_instant(value: datetime | None) -> datetime | None:
    """For Pydantic validators: ``value`` unchanged, or ``ValueError`` when it is outside the range."""
    if value is not None and not TIME_MIN <= value <= TIME_MAX:
        raise ValueError(f"must lie between {TIME_MIN.isoformat()} and {TIME_MAX.isoformat()}")
    return value


def _show(seconds: int) -> str:
    if TIME_MIN_S <= seconds <= TIME_MAX_S:
        return datetime.fromtimestamp(seconds, UTC).isoformat()
    return f"{seconds} s"


@dataclass(frozen=True)
class BookingPolicy:
    """The policy knobs; a value <= 0 switches its rule off (quotas live in the database).

    ``max_duration_s`` bounds every booking, lease or hold (a hold becomes a lease when accepted);
    ``max_hold_s`` bounds how far past now a hold may keep its capacity; ``extension_window_s`` is how
    close to its end an active lease may be extended; ``before_end_notice_s`` when its notice fires.
    """

    max_duration_s: int = 30 * 86400
    extension_window_s: int = 2 * 86400
    before_end_notice_s: int = 3600
    max_hold_s: int = 86400

    def check(
        self,
        start_s: int,
        end_s: int,
        now_s: int,
        *,
        expires_s: int | None = None,
        end_at: str = "/consumer/end_s",
        expires_at: str = "/consumer/expires_s",
    ) -> None:
        """Raise ``Forbidden`` (``lease_too_long`` or ``hold_too_long``) naming the field at fault."""
        limit = self.max_duration_s
        if limit > 0 and end_s - start_s > limit:
            raise Forbidden(
                f"a booking may last at most {limit} s; this one would last {end_s - start_s} s",
                [FieldError(end_at, f"more than {limit} s after the start")],
                code="lease_too_long",
            )
        hold = self.max_hold_s
        if expires_s is not None and hold > 0 and expires_s - now_s > hold:
            raise Forbidden(
                f"a hold may keep capacity at most {hold} s; this one would keep it {expires_s - now_s} s",
                [FieldError(expires_at, f"more than {hold} s after now")],
                code="hold_too_long",
            )
