"""The ``slurm`` provisioner: a lease becomes a Slurm advance reservation, a job becomes ``sbatch`` in it.

Why this shape: slotbroker picks the site and the time; the site's own scheduler runs the work and
enforces the booking (docs/decisions/0019-slurm-provisioner.md). So nothing runs on the broker's host:
``provision`` asks slurmctld for a reservation on the lease's nodes for the lease's window, ``submit``
queues the workload into it, and Slurm decides when it starts and kills it when the reservation ends.

* Names come from ids, so a restarted broker finds everything again without local state: the
  reservation of lease ``L`` is ``sb-L`` (the provision id), a planner job's Slurm job is named
  ``sb-<sha256(job id)[:24]>`` (how ``submit`` finds a job it made before a crash), and its output is
  ``<spool>/slurm-<Slurm job id>.out`` (readable after slurmctld forgot the job).
* Nodes: a host provider ``<host_prefix><node>`` is Slurm node ``<node>`` (``host_prefix`` defaults to
  ``""``: providers named as the nodes); ``nodes`` maps other names explicitly. Hosts of the lease that
  map to no node (another site's) are not this provisioner's; a lease with none of its nodes fails.
* ``provision`` is idempotent by name: an existing ``sb-L`` is reused (its node list brought to the
  lease's if a retry moved the lease). A reservation Slurm refuses (a node down or drained, an
  overlapping reservation made outside the broker, nodes busy with other jobs) raises
  ``ProvisionerError``: the planner's retry path, which moves the lease to alternate hosts.
* One reservation serves every job of its lease and lives as long as the lease (``lease_scoped``): it
  tells Slurm the broker holds those nodes, so a job that ends early must not give them back to Slurm
  while the lease still holds them. The planner calls ``release`` only once the lease is over (a job
  torn down by the lease's end or cancel) and ``release_lease`` when the lease ends or is cancelled.
  ``release`` deletes it only when no job is pending or running in it any more (the last job's release
  does); Slurm refusing (a cancelled job still completing) raises, and the planner retries the release.
* ``follow`` (``follows_lease``): the planner calls it while a job waits, with the lease's current
  window; an extended, shortened or moved lease updates the reservation's times.
* Workload: ``extra.script`` (a batch script; ``#!/bin/sh`` is added if it has no ``#!`` line) or
  ``command + args`` (run with ``exec``, every word quoted); ``extra.nodes``: how many of the lease's
  nodes the job asks for (default all); ``env`` reaches the job through sbatch's environment, which is
  otherwise only ``PATH``/``LANG``/``TZ`` plus ``SLOTBROKER_JOB_ID``/``SLOTBROKER_LEASE_ID`` (names
  starting ``SLURM_``/``SBATCH_``/``SALLOC_`` are refused: they would steer sbatch itself).
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from slotbroker.domain.errors import FieldError, pointer
from slotbroker.domain.jobs import Workload
from slotbroker.domain.slurm_text import (
    JOB_ID,
    SAFE_NAME,
    format_time,
    is_null,
    job_name,
    parse_time,
    reservation_name,
)
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
from slotbroker.services.planner.provisioners.slurm_cli import SlurmCommandError, SlurmCommands
from slotbroker.services.planner.provisioners.slurm_config import SlurmConfig, nodes_of

QUEUED_STATES = frozenset({"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"})
DONE_STATES: Mapping[str, RunPhase] = {
    "COMPLETED": RunPhase.SUCCEEDED,
    "CANCELLED": RunPhase.CANCELED,
    "FAILED": RunPhase.FAILED,
    "TIMEOUT": RunPhase.FAILED,
    "NODE_FAIL": RunPhase.FAILED,
    "OUT_OF_MEMORY": RunPhase.FAILED,
    "BOOT_FAIL": RunPhase.FAILED,
    "DEADLINE": RunPhase.FAILED,
    "PREEMPTED": RunPhase.FAILED,
}
"""Slurm's final job states onto the planner's; any other state is still queued or running."""
DONE_PHASES = frozenset(DONE_STATES.values())
CANCEL_WAIT_S = 10.0
BLOCKING_STATES = frozenset({"PENDING", "RUNNING", "SUSPENDED", "CONFIGURING", "REQUEUED"})
"""Job states that keep a reservation alive at ``release`` (a job still completing does not)."""
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
STEERING_ENV = ("SLURM_", "SBATCH_", "SALLOC_", "SRUN_")


def map_state(state: str) -> RunPhase:
    base = state.split("+")[0].split()[0] if state else ""
    if base in DONE_STATES:
        return DONE_STATES[base]
    if base in QUEUED_STATES:
        return RunPhase.QUEUED
    return RunPhase.RUNNING


def exit_code(value: str | None) -> tuple[int | None, str]:
    """``ExitCode=2:0`` -> (2, ""); ``0:9`` (killed by signal 9) -> (128 + 9, "signal 9")."""
    if is_null(value):
        return None, ""
    assert value is not None
    code, _, sig = value.partition(":")
    try:
        c, s = int(code), int(sig or 0)
    except ValueError:
        return None, ""
    if s:
        return (c or 128 + s), f"signal {s}"
    return c, ""


@dataclass
class SlurmProvisioner(Provisioner):
    config: SlurmConfig = field(default_factory=SlurmConfig)
    cli: SlurmCommands | None = None
    max_log_lines: int = 1000
    max_log_line_bytes: int = 4096
    clock: Callable[[], float] = time.time
    name: str = "slurm"
    min_role: ClassVar[Role] = Role.OPERATOR  # a job here runs code on the cluster's nodes
    follows_lease: ClassVar[bool] = True
    provisions_ahead: ClassVar[bool] = True  # the reservation is made in advance: Slurm plans around it
    lease_scoped: ClassVar[bool] = True  # the reservation is the lease's, not a job's
    _windows: dict[str, tuple[int, int]] = field(default_factory=dict)  # what follow() last saw

    def __post_init__(self) -> None:
        if self.cli is None:
            self.cli = SlurmCommands(self.config.conf, self.config.bin_dir)
        Path(self.config.spool).mkdir(mode=0o755, parents=True, exist_ok=True)

    @property
    def slurm(self) -> SlurmCommands:
        assert self.cli is not None
        return self.cli

    # -- reservations ----------------------------------------------------------------------------------
    async def provision(self, allocation: Allocation, key: str) -> str:
        try:
            name = reservation_name(allocation.lease_id)
        except ValueError as exc:
            raise ProvisionerError(str(exc)) from None
        nodes = nodes_of(self.config, allocation)
        if not nodes:
            raise ProvisionerError("no host of this lease is a node of the Slurm cluster (check host_prefix)")
        now = int(self.clock())
        if allocation.end_s <= now:
            raise ProvisionerError(f"lease {allocation.lease_id} has ended")
        existing = await self.slurm.reservation(name)
        if existing is None:
            start = "now" if allocation.start_s <= now else format_time(allocation.start_s)
            try:
                await self.slurm.create_reservation(
                    name, nodes, start, format_time(allocation.end_s), self.config.users
                )
            except SlurmCommandError as exc:
                if await self.slurm.reservation(name) is None:  # not made by a racing call either
                    why = f"Slurm refused reservation {name} on {','.join(nodes)}: {exc.stderr}"
                    raise ProvisionerError(why) from None
        else:  # reused: bring it to the lease as it is now (a retry moved it, its window changed)
            have = await self.slurm.hostnames(existing.get("Nodes", ""))
            if sorted(have) != sorted(nodes):
                try:
                    await self.slurm.update_reservation(name, nodes=",".join(nodes))
                except SlurmCommandError as exc:
                    where = ",".join(nodes)
                    raise ProvisionerError(f"Slurm refused moving {name} to {where}: {exc.stderr}") from None
            await self._match_window(name, existing, allocation)
        return name

    async def status(self, provision_id: str) -> ProvisionStatus:
        if not SAFE_NAME.match(provision_id):
            return ProvisionStatus(ProvisionPhase.UNKNOWN)
        res = await self.slurm.reservation(provision_id)
        if res is None:
            return ProvisionStatus(ProvisionPhase.UNKNOWN, "no such reservation")
        return ProvisionStatus(ProvisionPhase.READY, f"{res.get('State', '?')} on {res.get('Nodes', '?')}")

    async def release(self, provision_id: str) -> None:
        if not SAFE_NAME.match(provision_id):
            return
        jobs = await self.slurm.jobs_in(provision_id)
        if any(state in BLOCKING_STATES for _id, _name, state in jobs):
            return  # another job of the lease still uses it; the last release deletes it
        try:
            await self.slurm.delete_reservation(provision_id)
        except SlurmCommandError as exc:
            raise ProvisionerError(f"Slurm kept reservation {provision_id}: {exc.stderr}") from None
        self._windows.pop(provision_id, None)

    async def release_lease(self, lease_id: str) -> None:
        try:
            name = reservation_name(lease_id)
        except ValueError:
            return  # not a name this provisioner could have made
        if await self.slurm.reservation(name) is not None:  # most leases never had one: one call
            await self.release(name)

    async def follow(self, provision: Provision) -> None:
        name, allocation = provision.provision_id, provision.allocation
        if not SAFE_NAME.match(name) or self._windows.get(name) == (allocation.start_s, allocation.end_s):
            return
        res = await self.slurm.reservation(name)
        if res is not None:
            await self._match_window(name, res, allocation)

    async def _match_window(self, name: str, res: dict[str, str], allocation: Allocation) -> None:
        """Move the reservation's start (while it has not started) and end to the lease's."""
        now = int(self.clock())
        changes: dict[str, str] = {}
        start, end = parse_time(res.get("StartTime", "")), parse_time(res.get("EndTime", ""))
        if start is not None and start > now and allocation.start_s != start:
            changes["starttime"] = "now" if allocation.start_s <= now else format_time(allocation.start_s)
        if end != allocation.end_s and allocation.end_s > now:
            changes["endtime"] = format_time(allocation.end_s)
        if changes:
            try:
                await self.slurm.update_reservation(name, **changes)
            except SlurmCommandError as exc:
                raise ProvisionerError(f"Slurm refused {name} {changes}: {exc.stderr}") from None
        self._windows[name] = (allocation.start_s, allocation.end_s)

    # -- jobs ------------------------------------------------------------------------------------------
    async def submit(self, workload: Workload, provision: Provision, key: str) -> str:
        reservation = provision.provision_id
        if not SAFE_NAME.match(reservation):
            raise ProvisionerError(f"not a Slurm reservation name: {reservation!r}")
        problems = self.workload_problems(workload)  # checked at creation too; this is the last gate
        if problems:
            raise ProvisionerError("; ".join(f"{p.pointer}: {p.detail}" for p in problems))
        jname = job_name(key)
        for job_id, name, _state in await self.slurm.jobs_in(reservation):
            if name == jname:  # made by an earlier call with this key (a crash after sbatch)
                return job_id
        script = self._script(workload)
        nodes = self._node_count(workload, provision)
        options = [
            f"--reservation={reservation}",
            f"--job-name={jname}",
            f"--nodes={nodes}",
            f"--output={self.config.spool}/slurm-%j.out",
            f"--chdir={self.config.spool}",
        ]
        if self.config.partition:
            options.append(f"--partition={self.config.partition}")
        env = self._environment(workload, provision, key)
        try:
            job_id = await self.slurm.sbatch(options, script, env)
        except SlurmCommandError as exc:
            raise ProvisionerError(f"sbatch refused the job: {exc.stderr}") from None
        if not JOB_ID.match(job_id):
            raise ProvisionerError(f"sbatch answered {job_id!r}, not a job id")
        return job_id

    def workload_problems(self, workload: Workload) -> list[FieldError]:
        out: list[FieldError] = []
        script = workload.extra.get("script")
        if script is not None and (not isinstance(script, str) or not script.strip()):
            out.append(FieldError("/workload/extra/script", "a non-empty batch script"))
        if script is None and not workload.argv:
            out.append(FieldError("/workload/command", "needed (or extra.script) by the slurm provisioner"))
        nodes = workload.extra.get("nodes")
        if nodes is not None and (isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 1):
            out.append(FieldError("/workload/extra/nodes", "a positive integer"))
        for k, v in workload.env.items():
            if not ENV_NAME.match(k) or k.startswith(STEERING_ENV) or "\0" in v:
                why = "not allowed in a Slurm job (a shell name not starting SLURM_, SBATCH_, SALLOC_, SRUN_)"
                out.append(FieldError(pointer("workload", "env", k), why))
        return out

    @staticmethod
    def _script(workload: Workload) -> str:
        script = workload.extra.get("script")
        if script is not None:
            if not isinstance(script, str) or not script.strip():
                raise ProvisionerError("workload.extra.script must be a non-empty string")
            return script if script.startswith("#!") else "#!/bin/sh\n" + script
        if not workload.argv:
            raise ProvisionerError("the slurm provisioner needs workload.command or workload.extra.script")
        return f"#!/bin/sh\nexec {shlex.join(workload.argv)}\n"

    def _node_count(self, workload: Workload, provision: Provision) -> int:
        total = len(nodes_of(self.config, provision.allocation))
        wanted = workload.extra.get("nodes")
        if wanted is None:
            return max(1, total)
        if isinstance(wanted, bool) or not isinstance(wanted, int) or wanted < 1:
            raise ProvisionerError("workload.extra.nodes must be a positive integer")
        return wanted

    @staticmethod
    def _environment(workload: Workload, provision: Provision, key: str) -> dict[str, str]:
        env: dict[str, str] = {}
        for k, v in workload.env.items():
            if not ENV_NAME.match(k) or k.startswith(STEERING_ENV) or "\0" in v:
                raise ProvisionerError(f"workload.env: {k!r} is not allowed for Slurm jobs")
            env[k] = v
        env["SLOTBROKER_JOB_ID"] = key
        env["SLOTBROKER_LEASE_ID"] = provision.allocation.lease_id
        return env

    async def run_status(self, run_id: str) -> RunStatus:
        if not JOB_ID.match(run_id):
            return RunStatus(RunPhase.UNKNOWN)
        job = await self.slurm.job(run_id)
        if job is None:
            return RunStatus(RunPhase.UNKNOWN, detail="slurmctld no longer knows the job")
        state = job.get("JobState", "")
        phase = map_state(state)
        if phase in (RunPhase.QUEUED, RunPhase.RUNNING):
            return RunStatus(phase, detail=f"{state} {job.get('Reason', '')}".strip())
        code, why = exit_code(job.get("ExitCode"))
        logs = await asyncio.to_thread(self._tail, run_id)
        return RunStatus(phase, code, logs, f"Slurm {state} {why}".strip())

    def _tail(self, run_id: str) -> tuple[str, ...]:
        """The last ``max_log_lines`` lines of the job's output file (read from the end: bounded)."""
        path = Path(self.config.spool) / f"slurm-{run_id}.out"
        budget = self.max_log_lines * (self.max_log_line_bytes + 1)
        try:
            with path.open("rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - budget))
                raw = f.read(budget)
        except OSError:
            return ()
        lines = raw.decode("utf-8", "replace").splitlines()
        if size > budget and lines:
            lines = lines[1:]  # the first line read is probably cut
        return tuple(line[: self.max_log_line_bytes] for line in lines[-self.max_log_lines :])

    async def cancel(self, run_id: str) -> None:
        if not JOB_ID.match(run_id):
            return
        try:
            await self.slurm.scancel(run_id)
        except SlurmCommandError as exc:
            if "invalid job id" in exc.stderr.lower() or "already completed" in exc.stderr.lower():
                return
            raise ProvisionerError(f"scancel {run_id}: {exc.stderr}") from None
        # scancel only signals: wait (bounded) until slurmctld records the end, so the planner's
        # run_status right after this call sees the final state and the output.
        deadline = time.monotonic() + CANCEL_WAIT_S
        while time.monotonic() < deadline:
            job = await self.slurm.job(run_id)
            if job is None or map_state(job.get("JobState", "")) in DONE_PHASES:
                return
            await asyncio.sleep(0.25)


def make_provisioner(context: ProvisionerContext) -> SlurmProvisioner:
    """Entry-point factory: ``SlurmConfig`` from ``context.options``, else ``SLOTBROKER_SLURM_*``."""
    config = SlurmConfig.from_options(context.options) if context.options else SlurmConfig.from_env()
    return SlurmProvisioner(config, None, context.max_log_lines, context.max_log_line_bytes)


__all__ = ["SlurmConfig", "SlurmProvisioner", "exit_code", "make_provisioner", "map_state"]
