"""Settings, read from ``SLOTBROKER_*`` environment variables (docs/operations.md lists them)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from slotbroker.services.access.tokens import Role
from slotbroker.services.planner.settings import enabled_from_env, local_run_as_from_env, roles_from_env
from slotbroker.store.db import database_url


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _opt_int(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else None


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value in (None, "") else value.strip().lower() not in ("0", "false", "no", "off")


def _gc_threshold() -> tuple[int, int, int] | None:
    """``SLOTBROKER_GC_THRESHOLD="700,10,10"`` -> (700, 10, 10); unset or empty: Python's own."""
    value = os.environ.get("SLOTBROKER_GC_THRESHOLD", "").strip()
    if not value:
        return None
    parts = tuple(int(p) for p in value.split(","))
    if len(parts) != 3 or parts[0] < 1 or min(parts) < 0:
        raise ValueError(f"SLOTBROKER_GC_THRESHOLD takes three integers, the first at least 1: {value!r}")
    return (parts[0], parts[1], parts[2])


@dataclass(frozen=True)
class Settings:
    database_url: str = field(default_factory=database_url)
    max_body_bytes: int = field(default_factory=lambda: _int("SLOTBROKER_MAX_BODY_BYTES", 1 << 20))
    # values (list entries and map members, at any depth) in a request body but a topology document (422
    # beyond): the largest legitimate, a claim of 2000 items, holds about 10000
    max_body_items: int = field(default_factory=lambda: _int("SLOTBROKER_MAX_BODY_ITEMS", 20_000))
    max_topology_bytes: int = field(default_factory=lambda: _int("SLOTBROKER_MAX_TOPOLOGY_BYTES", 32 << 20))
    # entries of any one list or map in a topology document, and providers in its whole tree (422 beyond)
    max_topology_items: int = field(default_factory=lambda: _int("SLOTBROKER_MAX_TOPOLOGY_ITEMS", 100_000))
    max_in_flight: int = field(default_factory=lambda: _int("SLOTBROKER_MAX_IN_FLIGHT", 64))
    max_streams: int = field(default_factory=lambda: _int("SLOTBROKER_MAX_STREAMS", 256))
    claim_fast_path: bool = field(default_factory=lambda: _bool("SLOTBROKER_CLAIM_FAST_PATH", True))
    find_slot_fast_path: bool = field(default_factory=lambda: _bool("SLOTBROKER_FIND_SLOT_FAST_PATH", True))
    # ClaimService(pg_two_trips=): PostgreSQL claims in two round trips (store/claims/pg_two_trips.py)
    pg_two_trips: bool = field(default_factory=lambda: _bool("SLOTBROKER_PG_PREPARED_CLAIMS", True))
    rate_per_s: float = field(default_factory=lambda: _float("SLOTBROKER_RATE_PER_S", 50.0))
    rate_burst: int = field(default_factory=lambda: _int("SLOTBROKER_RATE_BURST", 200))
    find_slot_max_range_days: int = field(
        default_factory=lambda: _int("SLOTBROKER_FIND_SLOT_MAX_RANGE_DAYS", 90)
    )
    find_slot_async_cost: float = field(
        default_factory=lambda: _float("SLOTBROKER_FIND_SLOT_ASYNC_COST", 200.0)
    )
    find_slot_cache_ttl_s: float = field(
        default_factory=lambda: _float("SLOTBROKER_FIND_SLOT_CACHE_TTL_S", 30.0)
    )
    # threads POST /v1/find-slot searches on, first come, first served (api/find_slot_lane.py)
    find_slot_threads: int = field(default_factory=lambda: _int("SLOTBROKER_FIND_SLOT_THREADS", 1))
    # after a search that built a new calendar index: one full collection, then freeze (api/heap.py)
    gc_freeze: bool = field(default_factory=lambda: _bool("SLOTBROKER_GC_FREEZE", True))
    gc_threshold: tuple[int, int, int] | None = field(default_factory=_gc_threshold)
    find_slot_job_ttl_s: int = field(default_factory=lambda: _int("SLOTBROKER_FIND_SLOT_JOB_TTL_S", 3600))
    # wall time one synchronous search may take before it answers what it covered (0: no limit)
    find_slot_budget_ms: float = field(
        default_factory=lambda: _float("SLOTBROKER_FIND_SLOT_BUDGET_MS", 2000.0)
    )
    # booking
    offer_ttl_s: int = field(default_factory=lambda: _int("SLOTBROKER_OFFER_TTL_S", 300))
    allocation_request_ttl_s: int = field(
        default_factory=lambda: _int("SLOTBROKER_ALLOCATION_REQUEST_TTL_S", 600)
    )
    # signs allocation request ids (services/booking/allocation_request_ids.py); None: a key kept in the db
    secret_key: str | None = field(default_factory=lambda: os.environ.get("SLOTBROKER_SECRET_KEY") or None)
    max_lease_duration_s: int = field(
        default_factory=lambda: _int("SLOTBROKER_MAX_LEASE_DURATION_S", 30 * 86400)
    )
    extension_window_s: int = field(default_factory=lambda: _int("SLOTBROKER_EXTENSION_WINDOW_S", 2 * 86400))
    max_hold_s: int = field(default_factory=lambda: _int("SLOTBROKER_MAX_HOLD_S", 86400))
    before_end_notice_s: int = field(default_factory=lambda: _int("SLOTBROKER_BEFORE_END_NOTICE_S", 3600))
    event_loop_interval_s: float = field(
        default_factory=lambda: _float("SLOTBROKER_EVENT_LOOP_INTERVAL_S", 5.0)
    )
    # planner: steps the embedded worker pool runs at once; 0 turns it off (tests, or a fleet
    # where only `slotbroker admin worker` processes run jobs); None takes SLOTBROKER_PLANNER_WORKERS / 16
    planner_workers: int | None = field(default_factory=lambda: _opt_int("SLOTBROKER_PLANNER_WORKERS"))
    # PostgreSQL: the planner's enqueues defer procrastinate tasks for
    # `slotbroker admin worker --procrastinate`
    planner_procrastinate: bool = field(
        default_factory=lambda: _bool("SLOTBROKER_PLANNER_PROCRASTINATE", False)
    )
    # provisioners: only these load, whatever is installed; `local` runs commands on this host
    provisioners: tuple[str, ...] = field(default_factory=enabled_from_env)  # SLOTBROKER_PROVISIONERS
    provisioner_roles: dict[str, Role] = field(default_factory=roles_from_env)  # ..._PROVISIONER_ROLES
    local_run_as: str | None = field(default_factory=local_run_as_from_env)  # SLOTBROKER_LOCAL_RUN_AS
    migrate_on_start: bool = field(default_factory=lambda: _bool("SLOTBROKER_MIGRATE_ON_START", True))
