"""A simulated provisioner for tests and benchmarks: latency, failures, hangs, flakiness, and gates.

Behaviour (``SimulatedConfig``): each call may sleep ``latency_s``; a provision is ready
``ready_after_s`` after it was made; a run lasts ``run_s`` and exits with ``exit_code``. ``failure_rate``
makes a provision fail (its status turns ``failed``), ``hang_rate`` makes it stay ``pending`` forever,
``flaky_rate`` makes any call raise ``ProvisionerError`` before doing anything. ``outcome`` (a callable
``(allocation, key) -> "ready" | "fail" | "hang"``) overrides the rates, deterministically.

Gates pause a call at a chosen point until the test opens them: ``gate("provision")`` then
``await g.entered.wait()`` ... ``g.open()``. Points: ``provision``, ``submit``, ``release``, ``cancel``
(inside the call, before its effect), ``provision:after`` and ``submit:after`` (after the effect, before
the call returns: a crash there leaves a provision / run the planner has not recorded) and ``run`` (a
run submitted while the gate is installed stays ``running`` until it is opened).

Counters for assertions: ``calls`` per method, ``releases`` per provision id (every call), ``created``
provisions and ``runs`` (effective, i.e. after idempotency), ``events`` in order. It keeps every record
(it is for tests and benchmarks, not for production).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from slotbroker.domain.jobs import Workload
from slotbroker.services.access.tokens import Role
from slotbroker.services.planner.provisioners.base import (
    Allocation,
    Provision,
    Provisioner,
    ProvisionerContext,
    ProvisionerError,
    ProvisionPhase,
    ProvisionStatus,
    RunPhase,
    RunStatus,
)

Outcome = Callable[[Allocation, str], str]


@dataclass
class SimulatedConfig:
    latency_s: float = 0.0
    ready_after_s: float = 0.0
    run_s: float = 0.0
    exit_code: int = 0
    failure_rate: float = 0.0
    hang_rate: float = 0.0
    flaky_rate: float = 0.0
    seed: int = 0
    outcome: Outcome | None = None
    logs: tuple[str, ...] = ("simulated run",)


class Gate:
    """A pause point: ``entered`` is set when a call reaches it; the call goes on after ``open()``."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.opened = asyncio.Event()
        self.hits = 0

    def open(self) -> None:
        self.opened.set()

    async def pass_through(self) -> None:
        self.hits += 1
        self.entered.set()
        await self.opened.wait()


@dataclass
class _Provision:
    key: str
    allocation: Allocation
    made: float
    outcome: str
    released: bool = False


@dataclass
class _Run:
    key: str
    provision_id: str
    started: float
    gate: Gate | None
    canceled: bool = False


@dataclass
class SimulatedProvisioner(Provisioner):
    config: SimulatedConfig = field(default_factory=SimulatedConfig)
    name: str = "simulated"
    min_role: ClassVar[Role] = Role.USER  # it runs nothing anywhere

    def __post_init__(self) -> None:
        self.rng = random.Random(self.config.seed)
        self.gates: dict[str, Gate] = {}
        self.calls: Counter[str] = Counter()
        self.releases: Counter[str] = Counter()
        self.cancels: Counter[str] = Counter()
        self.events: list[tuple[str, str]] = []
        self._provisions: dict[str, _Provision] = {}
        self._by_key: dict[str, str] = {}
        self._runs: dict[str, _Run] = {}
        self._runs_by_key: dict[str, str] = {}
        self._ids = itertools.count(1)

    # -- test hooks ---------------------------------------------------------------------------------------
    def gate(self, point: str) -> Gate:
        g = Gate()
        self.gates[point] = g
        return g

    def ungate(self, point: str) -> None:
        g = self.gates.pop(point, None)
        if g is not None:
            g.open()

    @property
    def created(self) -> int:
        return len(self._provisions)

    @property
    def runs(self) -> int:
        return len(self._runs)

    def double_released(self) -> int:
        """Provisions released more than once (must stay 0)."""
        return sum(1 for n in self.releases.values() if n > 1)

    def key_of(self, provision_id: str) -> str:
        return self._provisions[provision_id].key

    def forget(self, provision_id: str) -> None:
        """Lose a provision (as a provisioner restart would)."""
        p = self._provisions.pop(provision_id)
        self._by_key.pop(p.key, None)

    def unreleased(self) -> list[str]:
        return [pid for pid, p in self._provisions.items() if not p.released]

    # -- helpers -----------------------------------------------------------------------------------------
    async def _enter(self, method: str) -> None:
        self.calls[method] += 1
        if self.config.latency_s:
            await asyncio.sleep(self.config.latency_s)
        if self.config.flaky_rate and self.rng.random() < self.config.flaky_rate:
            raise ProvisionerError(f"simulated flaky {method}")
        gate = self.gates.get(method)
        if gate is not None:
            await gate.pass_through()

    async def _after(self, method: str) -> None:
        gate = self.gates.get(f"{method}:after")
        if gate is not None:
            await gate.pass_through()

    def _decide(self, allocation: Allocation, key: str) -> str:
        if self.config.outcome is not None:
            return self.config.outcome(allocation, key)
        r = self.rng.random()
        if r < self.config.failure_rate:
            return "fail"
        if r < self.config.failure_rate + self.config.hang_rate:
            return "hang"
        return "ready"

    # -- the interface -----------------------------------------------------------------------------------
    async def provision(self, allocation: Allocation, key: str) -> str:
        await self._enter("provision")
        existing = self._by_key.get(key)
        if existing is not None:
            return existing
        pid = f"sim-p{next(self._ids)}"
        self._provisions[pid] = _Provision(key, allocation, time.monotonic(), self._decide(allocation, key))
        self._by_key[key] = pid
        self.events.append(("provision", pid))
        await self._after("provision")
        return pid

    async def status(self, provision_id: str) -> ProvisionStatus:
        await self._enter("status")
        p = self._provisions.get(provision_id)
        if p is None:
            return ProvisionStatus(ProvisionPhase.UNKNOWN)
        if p.released:
            return ProvisionStatus(ProvisionPhase.RELEASED)
        if p.outcome == "fail":
            return ProvisionStatus(ProvisionPhase.FAILED, "simulated provisioning failure")
        if p.outcome == "hang" or time.monotonic() - p.made < self.config.ready_after_s:
            return ProvisionStatus(ProvisionPhase.PENDING)
        return ProvisionStatus(ProvisionPhase.READY)

    async def release(self, provision_id: str) -> None:
        await self._enter("release")
        self.releases[provision_id] += 1
        self.events.append(("release", provision_id))
        p = self._provisions.get(provision_id)
        if p is not None:
            p.released = True

    async def submit(self, workload: Workload, provision: Provision, key: str) -> str:
        await self._enter("submit")
        existing = self._runs_by_key.get(key)
        if existing is not None:
            return existing
        rid = f"sim-r{next(self._ids)}"
        self._runs[rid] = _Run(key, provision.provision_id, time.monotonic(), self.gates.get("run"))
        self._runs_by_key[key] = rid
        self.events.append(("submit", rid))
        await self._after("submit")
        return rid

    async def run_status(self, run_id: str) -> RunStatus:
        await self._enter("run_status")
        r = self._runs.get(run_id)
        if r is None:
            return RunStatus(RunPhase.UNKNOWN)
        if r.canceled:
            return RunStatus(RunPhase.CANCELED, None, self.config.logs)
        if r.gate is not None and not r.gate.opened.is_set():
            r.gate.hits += 1
            r.gate.entered.set()
            return RunStatus(RunPhase.RUNNING)
        if time.monotonic() - r.started < self.config.run_s:
            return RunStatus(RunPhase.RUNNING)
        code = self.config.exit_code
        return RunStatus(RunPhase.SUCCEEDED if code == 0 else RunPhase.FAILED, code, self.config.logs)

    async def cancel(self, run_id: str) -> None:
        await self._enter("cancel")
        self.cancels[run_id] += 1
        self.events.append(("cancel", run_id))
        r = self._runs.get(run_id)
        if r is not None:
            r.canceled = True


def make_provisioner(context: ProvisionerContext) -> SimulatedProvisioner:
    """Entry-point factory: options are ``SimulatedConfig`` fields."""
    opts = {k: v for k, v in context.options.items() if k in SimulatedConfig.__dataclass_fields__}
    return SimulatedProvisioner(SimulatedConfig(**opts))


__all__ = ["Gate", "SimulatedConfig", "SimulatedProvisioner", "make_provisioner"]
