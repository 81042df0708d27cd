"""What Slurm's command-line tools print, read as data: ``scontrol show <entity> -o`` records, times, and
the names the broker gives Slurm objects.

Why here: the Slurm provisioner (services) and the Slurm topology importer read the same output, and
reading it is a pure rule. Slurm 22.05's ``scontrol`` has no JSON output, so its one-line format
(``Key=value`` pairs separated by blanks) is the contract. A value may itself hold blanks (``OS=Linux
6.1 #1 SMP``, ``Reason=Not responding``): a word that does not start a new ``Key=`` belongs to the
value before it.

Times: ``scontrol`` reads and prints times as local wall-clock times of the process that runs it, so
the broker formats and parses them in its own time zone and runs ``scontrol`` in that same zone (the
provisioner passes ``TZ`` through).
"""

from __future__ import annotations

import hashlib
import re
import time

_KEY = re.compile(r"^([A-Za-z][A-Za-z0-9_:/]*)=(.*)$")
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
"""A Slurm node, partition or reservation name the broker accepts (it reaches a command line)."""
JOB_ID = re.compile(r"^[0-9]{1,20}$")
RESERVATION_PREFIX = "sb-"
SLURM_TIME = "%Y-%m-%dT%H:%M:%S"


def parse_record(line: str) -> dict[str, str]:
    """One ``Key=value ...`` line as a dict (a word without ``=`` continues the previous value)."""
    out: dict[str, str] = {}
    last: str | None = None
    for word in line.split():
        m = _KEY.match(word)
        if m:
            last = m.group(1)
            out[last] = m.group(2)
        elif last is not None:
            out[last] = f"{out[last]} {word}"
    return out


def parse_records(text: str, key: str) -> list[dict[str, str]]:
    """Every line of ``scontrol show ... -o`` output that has ``key`` (e.g. ``NodeName``)."""
    records = (parse_record(line) for line in text.splitlines() if line.strip())
    return [r for r in records if key in r]


def is_null(value: str | None) -> bool:
    return value is None or value in ("", "(null)", "N/A", "None", "n/a")


def split_list(value: str | None) -> list[str]:
    """A comma-separated Slurm field (``fast,gpu``), empty for ``(null)``."""
    if is_null(value):
        return []
    assert value is not None
    return [v for v in value.split(",") if v]


def format_time(epoch_s: int) -> str:
    """An epoch second as ``scontrol`` reads it (local time of this process)."""
    return time.strftime(SLURM_TIME, time.localtime(epoch_s))


def parse_time(value: str) -> int | None:
    """A time ``scontrol`` printed, as an epoch second; None for ``Unknown``/``None`` and the like."""
    try:
        return int(time.mktime(time.strptime(value, SLURM_TIME)))
    except (ValueError, OverflowError):
        return None


def reservation_name(lease_id: str) -> str:
    """``sb-<lease id>``: the reservation a lease becomes; reconciliation finds leases by it."""
    name = f"{RESERVATION_PREFIX}{lease_id}"
    if not SAFE_NAME.match(name):
        raise ValueError(f"lease id {lease_id!r} cannot name a Slurm reservation")
    return name


def lease_of(reservation: str) -> str | None:
    """The lease id in a reservation name the broker made, else None."""
    if not reservation.startswith(RESERVATION_PREFIX):
        return None
    return reservation[len(RESERVATION_PREFIX) :] or None


def job_name(key: str) -> str:
    """The Slurm job name of a planner job (its submit key): fixed length and safe whatever the key
    holds, so ``submit`` can find the job it made before a crash."""
    return "sb-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]


__all__ = [
    "JOB_ID",
    "RESERVATION_PREFIX",
    "SAFE_NAME",
    "format_time",
    "is_null",
    "job_name",
    "lease_of",
    "parse_record",
    "parse_records",
    "parse_time",
    "reservation_name",
    "split_list",
]
