"""Planner settings: one object with documented defaults, overridable from ``SLOTBROKER_PLANNER_*``.

No timeout here is universal. A provisioner's readiness time is a property of that provisioner (a local
process is ready at once, a Kubernetes pod in seconds to minutes, a bare-metal node in tens of minutes),
so it is configured per provisioner (``ProvisionerPolicy``), measured and tuned by the operator;
``DEFAULT_POLICY`` is only what applies to a provisioner nobody configured. docs/planner.md lists them.

Which provisioners exist here at all is configuration too (``SLOTBROKER_PROVISIONERS``): an installed
plugin may run code on the broker's host, so being installed must not be enough to be offered to users.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields, replace
from typing import Any

from slotbroker.services.access.tokens import Role


@dataclass(frozen=True)
class RetryPolicy:
    """Provisioning attempts in all (the first included) and the back-off between them.

    alternates: a retry first moves the lease off the hosts the failed attempt used, onto untried hosts
        of the same site with room (in the transaction that commits the retry); when none has room the
        job fails. False: retries stay on the same allocation (for provisioners whose failures are not
        the host's fault, or sites where moving a lease is not wanted).
    """

    max_attempts: int = 3
    backoff_s: float = 1.0
    backoff_factor: float = 2.0
    max_backoff_s: float = 60.0
    alternates: bool = True

    def delay_s(self, failed_attempt: int) -> float:
        """Wait after attempt ``failed_attempt`` (1-based) failed."""
        return float(min(self.max_backoff_s, self.backoff_s * self.backoff_factor ** (failed_attempt - 1)))


@dataclass(frozen=True)
class ProvisionerPolicy:
    """How the planner treats one provisioner.

    readiness_timeout_s: a provision not ready this long after it was requested is a failed attempt
        (released, then retried per ``retry``). Set it from measurements of that provisioner.
    poll_interval_s: how often ``status`` / ``run_status`` are asked while waiting.
    call_timeout_s: the longest a single provisioner call may take before it counts as failed.
    max_active: jobs of this provisioner holding a provision at once (pending jobs beyond it wait while
        jobs of other provisioners go ahead: no head-of-line blocking). None = no limit.
    """

    readiness_timeout_s: float = 600.0
    poll_interval_s: float = 2.0
    call_timeout_s: float = 120.0
    max_active: int | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProvisionerPolicy:
        retry = RetryPolicy(**data.get("retry", {}))
        rest = {k: v for k, v in data.items() if k != "retry"}
        return cls(retry=retry, **rest)


DEFAULT_POLICY = ProvisionerPolicy()


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _env_policies() -> dict[str, ProvisionerPolicy]:
    raw = os.environ.get("SLOTBROKER_PLANNER_PROVISIONERS", "")
    if not raw:
        return {}
    data = json.loads(raw)
    return {name: ProvisionerPolicy.from_dict(spec) for name, spec in data.items()}


DEFAULT_ENABLED = ("simulated",)  # the only built-in provisioner that runs nothing on the host
ROLE_ORDER = (Role.USER, Role.OPERATOR, Role.ADMIN)  # lowest first
ROLES_VAR = "SLOTBROKER_PROVISIONER_ROLES"


def role_allows(role: Role, needed: Role) -> bool:
    """Whether ``role`` is ``needed`` or above it."""
    return ROLE_ORDER.index(role) >= ROLE_ORDER.index(needed)


def parse_names(raw: str) -> tuple[str, ...]:
    """``"simulated, local"`` -> ``("simulated", "local")`` (blanks and repeats dropped, order kept)."""
    return tuple(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))


def parse_roles(raw: str) -> dict[str, Role]:
    """``"local=admin,simulated=user"`` -> the lowest role allowed per provisioner. Anything else is a
    ``ValueError`` at start: a typo here must not silently leave a provisioner open."""
    roles: dict[str, Role] = {}
    for pair in raw.split(","):
        if not pair.strip():
            continue
        name, sep, role = (part.strip() for part in pair.partition("="))
        if not sep or not name or role not in {r.value for r in Role} or name in roles:
            raise ValueError(f"{ROLES_VAR}: {pair.strip()!r} is not NAME=admin|operator|user (once per NAME)")
        roles[name] = Role(role)
    return roles


def format_roles(roles: dict[str, Role]) -> str:
    return ",".join(f"{name}={role.value}" for name, role in roles.items())


def enabled_from_env() -> tuple[str, ...]:
    return parse_names(os.environ.get("SLOTBROKER_PROVISIONERS", "")) or DEFAULT_ENABLED


def roles_from_env() -> dict[str, Role]:
    return parse_roles(os.environ.get(ROLES_VAR, ""))


def local_run_as_from_env() -> str | None:
    return os.environ.get("SLOTBROKER_LOCAL_RUN_AS", "").strip() or None


@dataclass(frozen=True)
class PlannerSettings:
    """workers: steps run at once by the embedded pool (each is a coroutine, not a thread).
    claim_ttl_s: how long a worker's claim on a step lasts without a heartbeat; a crashed worker's steps
        are picked up again after it (the heartbeat renews claims every ``claim_ttl_s / 3``).
    idle_poll_s: how long an idle pool sleeps before it looks for due steps again (it is also woken
        directly by create/cancel in the same process).
    claim_batch: steps claimed per claiming transaction at most.
    wake_delay_s: after a wake-up (a job created or cancelled in this process) the dispatcher waits this
        long before claiming, so jobs created together are claimed in one transaction.
    retention_s: terminal jobs (with their transitions and logs) are kept this long, then purged.
    purge_interval_s: how often the pool purges.
    max_log_lines / max_log_line_bytes: bounds on a job's captured output (the tail is kept).
    queue_policy: ``fifo``, ``priority`` or ``fair`` (fair share by project).
    provisioners: a ``ProvisionerPolicy`` per provisioner name; ``default_policy`` for the others.
    enabled: the provisioners loaded when none are passed in (entry-point names); nothing else is.
    roles: the lowest token role allowed to use a provisioner, where it differs from what the provisioner
        declares (``Provisioner.min_role``).
    local_run_as: the account ``local`` runs commands as (the server must run as root); None: its own.
    """

    workers: int = field(default_factory=lambda: _env_int("SLOTBROKER_PLANNER_WORKERS", 16))
    claim_ttl_s: float = field(default_factory=lambda: _env_float("SLOTBROKER_PLANNER_CLAIM_TTL_S", 60.0))
    idle_poll_s: float = field(default_factory=lambda: _env_float("SLOTBROKER_PLANNER_IDLE_POLL_S", 1.0))
    claim_batch: int = field(default_factory=lambda: _env_int("SLOTBROKER_PLANNER_CLAIM_BATCH", 32))
    wake_delay_s: float = field(default_factory=lambda: _env_float("SLOTBROKER_PLANNER_WAKE_DELAY_S", 0.005))
    retention_s: float = field(
        default_factory=lambda: _env_float("SLOTBROKER_PLANNER_RETENTION_S", 7 * 86400.0)
    )
    purge_interval_s: float = field(
        default_factory=lambda: _env_float("SLOTBROKER_PLANNER_PURGE_INTERVAL_S", 300.0)
    )
    max_log_lines: int = field(default_factory=lambda: _env_int("SLOTBROKER_PLANNER_MAX_LOG_LINES", 1000))
    max_log_line_bytes: int = field(
        default_factory=lambda: _env_int("SLOTBROKER_PLANNER_MAX_LOG_LINE_BYTES", 4096)
    )
    queue_policy: str = field(default_factory=lambda: os.environ.get("SLOTBROKER_PLANNER_QUEUE", "fifo"))
    provisioners: dict[str, ProvisionerPolicy] = field(default_factory=_env_policies)
    default_policy: ProvisionerPolicy = DEFAULT_POLICY
    enabled: tuple[str, ...] = field(default_factory=enabled_from_env)
    roles: dict[str, Role] = field(default_factory=roles_from_env)
    local_run_as: str | None = field(default_factory=local_run_as_from_env)

    def policy(self, provisioner: str) -> ProvisionerPolicy:
        return self.provisioners.get(provisioner, self.default_policy)

    def with_policy(self, provisioner: str, **changes: Any) -> PlannerSettings:
        """A copy with ``provisioner``'s policy changed (tests, benchmarks)."""
        known = {f.name for f in fields(ProvisionerPolicy)}
        unknown = set(changes) - known
        if unknown:
            raise TypeError(f"unknown policy fields {sorted(unknown)}")
        policies = dict(self.provisioners)
        policies[provisioner] = replace(self.policy(provisioner), **changes)
        return replace(self, provisioners=policies)


__all__ = [
    "DEFAULT_ENABLED",
    "DEFAULT_POLICY",
    "PlannerSettings",
    "ProvisionerPolicy",
    "RetryPolicy",
    "enabled_from_env",
    "format_roles",
    "local_run_as_from_env",
    "parse_names",
    "parse_roles",
    "role_allows",
    "roles_from_env",
]
