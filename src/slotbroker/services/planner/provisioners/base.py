"""The provisioner interface and its registry (entry-point group ``slotbroker.provisioners``).

A provisioner turns a lease's allocation into something that can run work (a process slot, a pod, a VM,
a Slurm allocation) and runs a workload on it. The planner calls it from its steps and never holds a
database transaction open across a call. Rules every implementation follows (docs/planner.md):

* ``provision(allocation, key)`` is idempotent by ``key``: called again with the same key (a worker
  crashed before it could record the answer) it returns the same provision id and creates nothing new.
  The key is ``<job id>#<attempt>``: the job id, plus the attempt number for retries.
* ``submit(workload, provision, key)`` is idempotent by ``key`` (the job id) in the same way.
* ``release(provision_id)`` and ``cancel(run_id)`` are idempotent: a second call is a no-op.
* A provisioner that sets ``lease_scoped`` makes one provision per lease that every job of the lease
  shares (a Slurm reservation): it stands for capacity the broker holds, so it lives as long as the
  lease does. The planner's release step leaves it alone while the lease still holds its capacity
  (PENDING, ACTIVE, ERROR), and when the lease ends or is cancelled the planner calls
  ``release_lease(lease_id)`` (idempotent; also for a lease that has no job running then).
* ``status`` / ``run_status`` of an id the provisioner does not know answer ``UNKNOWN`` (used by
  restart reconciliation), they do not raise.
* ``follow(provision)`` (optional, for provisioners that set ``follows_lease``, e.g. a Slurm
  reservation that must end when the lease does) is idempotent.
* Optional ``workload_problems(workload)`` names what the provisioner cannot run (checked at create);
  optional ``recover(provision_id, run_id, allocation)`` relearns a provision/run made by another
  process (work that outlives the process, e.g. on remote hosts).
* A call that raises means "nothing was created" for ``provision``/``submit``; transient trouble that
  may have created something should be retried inside the call (with the same key) or reported as
  ``PENDING`` and sorted out by ``status``.

Third parties register a factory ``(ProvisionerContext) -> Provisioner`` under the entry-point group::

    [project.entry-points."slotbroker.provisioners"]
    kubernetes = "my_package.k8s:make_provisioner"

Being installed does not enable a provisioner: the planner loads only the names the operator lists
(``SLOTBROKER_PROVISIONERS``). Each declares ``min_role``, the lowest token role that may use it; one
that does not say is treated as able to run code on someone's machines (``operator``).
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from importlib.metadata import entry_points
from typing import Any, ClassVar

from slotbroker.domain.errors import FieldError
from slotbroker.domain.jobs import Workload
from slotbroker.services.access.tokens import Role

GROUP = "slotbroker.provisioners"


@dataclass(frozen=True)
class AllocationItem:
    provider: str  # the provider's name
    resource_class: str
    amount: int
    vlan_tag: int | None = None


@dataclass(frozen=True)
class Allocation:
    """What a provisioner may use: one lease's allocation (or one of its alternates). ``host_attributes``:
    each host's operator-set attributes from the topology (e.g. ``ssh_host``), what a provisioner that
    reaches hosts needs, never taken from the job request."""

    lease_id: str
    project: str
    start_s: int
    end_s: int
    items: tuple[AllocationItem, ...]
    label: str = "primary"  # "primary" or the alternate's name, for logs
    hosts: tuple[str, ...] = ()  # the names of the item providers that are hosts (not links, devices)
    host_attributes: Mapping[str, Mapping[str, str]] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Provision:
    """A provision the planner hands back to ``submit``."""

    provision_id: str
    allocation: Allocation


class ProvisionPhase(StrEnum):
    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"
    RELEASED = "released"
    UNKNOWN = "unknown"


class RunPhase(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    UNKNOWN = "unknown"


RUN_DONE = frozenset({RunPhase.SUCCEEDED, RunPhase.FAILED, RunPhase.CANCELED})


@dataclass(frozen=True)
class ProvisionStatus:
    phase: ProvisionPhase
    detail: str = ""


@dataclass(frozen=True)
class RunStatus:
    """``logs``: the (bounded) output captured so far, whole lines, oldest first (the tail if cut).
    ``detail``: what happened, in words; for a failed run it becomes the job's error (else "exit code N")."""

    phase: RunPhase
    exit_code: int | None = None
    logs: tuple[str, ...] = ()
    detail: str = ""


AllocationLoader = Callable[[], Awaitable["Allocation | None"]]


class ProvisionerError(Exception):
    """A provisioner call failed (nothing was created by it)."""


class Provisioner(abc.ABC):
    """The interface; see the module docstring for the rules."""

    name: str = "?"
    min_role: ClassVar[Role] = Role.OPERATOR
    follows_lease: ClassVar[bool] = False  # True: the planner calls ``follow`` while a job waits
    provisions_ahead: ClassVar[bool] = False  # True: provision when the job is created, not at lease start
    lease_scoped: ClassVar[bool] = False  # True: one provision per lease, kept until the lease is over

    @abc.abstractmethod
    async def provision(self, allocation: Allocation, key: str) -> str: ...

    @abc.abstractmethod
    async def status(self, provision_id: str) -> ProvisionStatus: ...

    @abc.abstractmethod
    async def release(self, provision_id: str) -> None: ...

    @abc.abstractmethod
    async def submit(self, workload: Workload, provision: Provision, key: str) -> str: ...

    @abc.abstractmethod
    async def run_status(self, run_id: str) -> RunStatus: ...

    @abc.abstractmethod
    async def cancel(self, run_id: str) -> None: ...

    def workload_problems(self, workload: Workload) -> list[FieldError]:
        """What makes ``workload`` one this provisioner can never run, as problems at ``/workload/...``
        (checked when a job is created, before anything is written); none by default."""
        return []

    async def follow(self, provision: Provision) -> None:  # noqa: B027 - optional hook
        """The lease behind ``provision`` may have changed (extended, shortened, moved): make what was
        provisioned follow ``provision.allocation``'s window. Called, for provisioners that set
        ``follows_lease``, each time the planner polls a job's provision or run; cheap when nothing
        changed, idempotent; raising only logs a warning (the next poll tries again)."""

    async def release_lease(self, lease_id: str) -> None:  # noqa: B027 - optional hook
        """For ``lease_scoped`` provisioners: lease ``lease_id`` ended or was cancelled, free its
        provision (a no-op when there is none, or when a job of the lease still runs in it: that job's
        own release, which comes once it is torn down, frees it then)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Free what the provisioner holds in this process (on pool shutdown)."""

    async def recover(  # noqa: B027 - optional hook
        self, provision_id: str, run_id: str | None, allocation: AllocationLoader
    ) -> None:
        """Relearn a provision (and its run) this process may not have made: the planner calls it before
        each step of a job holding a provision, so a provisioner whose work outlives the process (on
        remote hosts) can answer for it after a restart or when another worker took the job over.
        ``allocation()`` reads the lease's allocation (a database read: call it only when the ids are
        unknown here). Default: nothing (state that dies with the process stays ``unknown``)."""


@dataclass(frozen=True)
class ProvisionerContext:
    """What a factory gets: the planner's bounds on captured output, the account a provisioner that
    starts processes on this host runs them as (None: the server's own), and free-form options."""

    max_log_lines: int = 1000
    max_log_line_bytes: int = 4096
    options: Mapping[str, Any] = field(default_factory=dict)
    run_as: str | None = None


Factory = Callable[[ProvisionerContext], Provisioner]


def installed() -> list[str]:
    """The names registered in the entry-point group (nothing is imported: see ``load_all``)."""
    return sorted(ep.name for ep in entry_points(group=GROUP))


def load(name: str, context: ProvisionerContext | None = None) -> Provisioner:
    return load_all([name], context)[name]


def load_all(names: Sequence[str], context: ProvisionerContext | None = None) -> dict[str, Provisioner]:
    """The named provisioners (and only those); a name nobody installed is a ``LookupError``."""
    found = {ep.name: ep for ep in entry_points(group=GROUP) if ep.name in names}
    missing = [n for n in names if n not in found]
    if missing:
        known = ", ".join(installed()) or "none"
        raise LookupError(f"provisioner(s) {', '.join(missing)} not installed (installed: {known})")
    loaded: dict[str, Provisioner] = {}
    for name in names:
        factory: Factory = found[name].load()
        loaded[name] = factory(context or ProvisionerContext())
    return loaded


__all__ = [
    "GROUP",
    "RUN_DONE",
    "Allocation",
    "AllocationItem",
    "AllocationLoader",
    "Factory",
    "Provision",
    "ProvisionPhase",
    "ProvisionStatus",
    "Provisioner",
    "ProvisionerContext",
    "ProvisionerError",
    "RunPhase",
    "RunStatus",
    "installed",
    "load",
    "load_all",
]
