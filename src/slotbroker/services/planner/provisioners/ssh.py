"""The ``ssh`` provisioner: runs a job's workload on every host its lease booked, over SSH (asyncssh).

Where a host is reached comes from the topology (its ``ssh_host``/``ssh_port``/``ssh_user`` attributes,
handed over with the allocation) and the key and known_hosts from the server's configuration
(``ssh_remote.SshSettings``), never from the request; host keys are always verified. It runs code on
other people's machines, so it needs the ``operator`` role by default and is off unless enabled.

``provision`` connects to every booked host (a host that does not answer, or whose key is not the one in
known_hosts, fails the attempt with its name in the message; nothing is created remotely). ``submit``
starts one run per booked host, detached in a session of its own (``setsid``), in a run directory whose
``mkdir`` is the idempotency marker (``ssh_remote``): a retried submit, from this or another broker
process, finds the runs and starts nothing new; if some host cannot start, the runs already started are
stopped and removed and the call raises. ``run_status`` reads each run's state and output tail (lines
prefixed ``[host]``): the job runs while any run runs, fails as soon as one fails or is lost, and succeeds
when every run exited 0. ``cancel`` kills each run's process group (SIGTERM, then SIGKILL after
``grace_s``); ``release`` stops what still runs and removes the run directories. The runs live on the
hosts: after a restart, or in a worker that took a job over, ``recover`` rebuilds the records from the
lease's hosts (the directory names follow from the ids), so nothing is lost or started twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import ClassVar

import asyncssh

from slotbroker.domain.errors import FieldError
from slotbroker.domain.jobs import Workload
from slotbroker.services.access.tokens import Role
from slotbroker.services.planner.provisioners.base import (
    Allocation,
    AllocationLoader,
    Provision,
    Provisioner,
    ProvisionerContext,
    ProvisionerError,
    ProvisionPhase,
    ProvisionStatus,
    RunPhase,
    RunStatus,
)
from slotbroker.services.planner.provisioners.ssh_remote import (
    EXIT_PREFIX,
    SshSettings,
    SshTarget,
    cancel_script,
    env_problems,
    remove_script,
    run_tag,
    start_script,
    status_script,
    target_of,
)

log = logging.getLogger("slotbroker.planner.ssh")

STATUS_FAILURES = 5  # consecutive unanswered status calls before a host's run counts as lost


class SshError(ProvisionerError):
    """A host could not be reached or refused a command."""


@dataclass
class _Part:
    """One run of a job on one host."""

    target: SshTarget
    tag: str
    unanswered: int = 0


@dataclass
class _SshRun:
    provision_id: str
    parts: list[_Part]


@dataclass
class SshProvisioner(Provisioner):
    settings: SshSettings
    max_log_lines: int = 1000
    max_log_line_bytes: int = 4096
    name: str = "ssh"
    min_role: ClassVar[Role] = Role.OPERATOR
    _provisions: dict[str, tuple[SshTarget, ...]] = field(default_factory=dict)  # provision id -> hosts
    _runs: dict[str, _SshRun] = field(default_factory=dict)  # run id (the job id) -> run
    _connections: dict[tuple[SshTarget, int], asyncssh.SSHClientConnection] = field(default_factory=dict)
    _locks: dict[tuple[SshTarget, int], asyncio.Lock] = field(default_factory=dict)

    # -- reaching hosts ------------------------------------------------------------------------------------
    def _targets(self, allocation: Allocation) -> tuple[SshTarget, ...]:
        if not allocation.hosts:
            raise ProvisionerError("the ssh provisioner needs a lease that holds hosts")
        try:
            return tuple(
                target_of(name, allocation.host_attributes.get(name, {}), self.settings.default_user)
                for name in allocation.hosts
            )
        except ValueError as exc:
            raise ProvisionerError(str(exc)) from None

    async def _connect(self, target: SshTarget) -> asyncssh.SSHClientConnection:
        """The cached connection to ``target`` (one per host and event loop), made once even when many
        jobs on the host ask at the same time."""
        loop_key = (target, id(asyncio.get_running_loop()))
        lock = self._locks.setdefault(loop_key, asyncio.Lock())
        async with lock:
            conn = self._connections.get(loop_key)
            if conn is not None and not conn.is_closed():
                return conn
            conn = await self._open(target)
            self._connections[loop_key] = conn
            return conn

    async def _open(self, target: SshTarget) -> asyncssh.SSHClientConnection:
        try:
            conn = await asyncssh.connect(
                target.address,
                port=target.port,
                username=target.user,
                client_keys=[self.settings.key_path],
                known_hosts=self.settings.known_hosts_path,
                agent_path=None,
                config=None,
                password=None,
                kbdint_auth=False,
                connect_timeout=self.settings.connect_timeout_s,
                keepalive_interval=30,
            )
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            raise SshError(f"host {target}: cannot connect: {_reason(exc)}") from exc
        return conn

    async def _sh(self, target: SshTarget, script: str, timeout: float | None = None) -> tuple[int, str]:
        """Run ``script`` with ``sh -s`` on the host: (exit status, stdout). One reconnect on a dropped
        connection; anything else is an ``SshError`` naming the host."""
        limit = timeout if timeout is not None else self.settings.connect_timeout_s + 30
        for attempt in (1, 2):
            conn = await self._connect(target)
            try:
                # bytes: a run's output need not be UTF-8 (decoded below with replacement characters)
                result = await asyncio.wait_for(
                    conn.run("sh -s", input=script.encode(), check=False, encoding=None), limit
                )
            except (asyncssh.ConnectionLost, asyncssh.DisconnectError, BrokenPipeError) as exc:
                conn.close()
                if attempt == 2:
                    raise SshError(f"host {target}: connection lost: {_reason(exc)}") from exc
                continue
            except (OSError, asyncssh.Error, TimeoutError) as exc:
                raise SshError(f"host {target}: {_reason(exc)}") from exc
            status = result.exit_status if result.exit_status is not None else -1
            out = result.stdout or b""
            return status, out.decode("utf-8", "replace") if isinstance(out, bytes) else str(out)
        raise AssertionError("unreachable")

    # -- provisions ----------------------------------------------------------------------------------------
    async def provision(self, allocation: Allocation, key: str) -> str:
        pid = f"ssh:{key}"
        if pid in self._provisions:
            return pid
        targets = self._targets(allocation)
        await asyncio.gather(*(self._connect(t) for t in targets))
        self._provisions[pid] = targets
        return pid

    async def status(self, provision_id: str) -> ProvisionStatus:
        if provision_id in self._provisions:
            return ProvisionStatus(ProvisionPhase.READY)
        return ProvisionStatus(ProvisionPhase.UNKNOWN)

    async def release(self, provision_id: str) -> None:
        for run_id, run in list(self._runs.items()):
            if run.provision_id == provision_id:
                await self._remove(run.parts)
                del self._runs[run_id]
        self._provisions.pop(provision_id, None)

    async def _remove(self, parts: list[_Part]) -> None:
        """Stop and remove runs, best effort: a host that cannot be reached is logged, not retried."""
        grace = self.settings.grace_s
        results = await asyncio.gather(
            *(
                self._sh(p.target, remove_script(self.settings.run_dir, p.tag, grace), grace + 30)
                for p in parts
            ),
            return_exceptions=True,
        )
        for part, result in zip(parts, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("could not remove run %s on %s: %s", part.tag, part.target, result)

    async def recover(self, provision_id: str, run_id: str | None, allocation: AllocationLoader) -> None:
        """After a restart (or a takeover from another worker) the runs are still on the hosts, in
        directories named from (provision id, job id, host): rebuild the records from the lease's hosts,
        so status, cancel and release reach them again."""
        if provision_id in self._provisions and (run_id is None or run_id in self._runs):
            return
        found = await allocation()
        if found is None or not provision_id.startswith("ssh:"):
            return
        try:
            targets = self._provisions.setdefault(provision_id, self._targets(found))
        except ProvisionerError:
            return  # the hosts cannot be reached as configured now: the job's ids stay unknown
        if run_id is not None and run_id not in self._runs:
            parts = [_Part(t, run_tag(provision_id, run_id, t.name)) for t in targets]
            self._runs[run_id] = _SshRun(provision_id, parts)

    # -- runs ----------------------------------------------------------------------------------------------
    def workload_problems(self, workload: Workload) -> list[FieldError]:
        return env_problems(workload.env, workload.argv)

    async def submit(self, workload: Workload, provision: Provision, key: str) -> str:
        if key in self._runs:
            return key
        problems = self.workload_problems(workload)
        if problems:
            raise ProvisionerError("; ".join(f"{p.pointer}: {p.detail}" for p in problems))
        targets = self._provisions.get(provision.provision_id) or self._targets(provision.allocation)
        parts = [_Part(t, run_tag(provision.provision_id, key, t.name)) for t in targets]
        results = await asyncio.gather(
            *(self._start(part, i, len(parts), workload, provision, key) for i, part in enumerate(parts)),
            return_exceptions=True,
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            await self._remove(parts)  # nothing may stay behind a submit that raises
            raise ProvisionerError(str(failed[0]))
        self._runs[key] = _SshRun(provision.provision_id, parts)
        return key

    async def _start(
        self, part: _Part, index: int, count: int, workload: Workload, provision: Provision, key: str
    ) -> None:
        env = {
            **workload.env,
            "SLOTBROKER_JOB_ID": key,
            "SLOTBROKER_LEASE_ID": provision.allocation.lease_id,
            "SLOTBROKER_HOST": part.target.name,
            "SLOTBROKER_RUN_INDEX": str(index),
            "SLOTBROKER_RUN_COUNT": str(count),
        }
        script = start_script(self.settings.run_dir, part.tag, workload.argv, env)
        code, out = await self._sh(part.target, script)
        if code != 0:
            raise SshError(f"host {part.target}: could not start the run (exit {code}): {out.strip()[:200]}")

    async def run_status(self, run_id: str) -> RunStatus:
        run = self._runs.get(run_id)
        if run is None:
            return RunStatus(RunPhase.UNKNOWN)
        per_part = max(1, self.max_log_lines // len(run.parts))
        states = await asyncio.gather(*(self._part_status(p, per_part) for p in run.parts))
        logs = tuple(
            f"[{part.target.name}] {line}"
            for part, (_s, lines) in zip(run.parts, states, strict=True)
            for line in lines
        )
        codes: list[int] = []
        for part, (state, _lines) in zip(run.parts, states, strict=True):
            if state == "canceled":
                return RunStatus(RunPhase.CANCELED, None, logs)
            if state.startswith(EXIT_PREFIX):
                code = int(state[len(EXIT_PREFIX) :] or -1)
                if code != 0:
                    return RunStatus(RunPhase.FAILED, code, logs, f"exit code {code} on {part.target.name}")
                codes.append(code)
            elif state in ("lost", "missing"):
                detail = f"the run on {part.target} is gone ({state}: no exit code recorded)"
                return RunStatus(RunPhase.FAILED, None, logs, detail)
        if len(codes) == len(run.parts):
            return RunStatus(RunPhase.SUCCEEDED, 0, logs)
        return RunStatus(RunPhase.RUNNING, None, logs)

    async def _part_status(self, part: _Part, lines: int) -> tuple[str, list[str]]:
        script = status_script(self.settings.run_dir, part.tag, lines, self.max_log_line_bytes)
        try:
            _code, out = await self._sh(part.target, script)
        except SshError as exc:
            part.unanswered += 1
            log.warning("status of run %s on %s: %s", part.tag, part.target, exc)
            return ("lost" if part.unanswered >= STATUS_FAILURES else "running"), []
        part.unanswered = 0
        state, _, rest = out.partition("\n")
        return state.strip(), rest.splitlines()

    async def cancel(self, run_id: str) -> None:
        run = self._runs.get(run_id)
        if run is None:
            return
        grace = self.settings.grace_s
        await asyncio.gather(
            *(
                self._sh(p.target, cancel_script(self.settings.run_dir, p.tag, grace), grace + 30)
                for p in run.parts
            )
        )

    async def close(self) -> None:
        for conn in self._connections.values():
            conn.close()
        for conn in self._connections.values():
            with contextlib.suppress(Exception):
                await conn.wait_closed()
        self._connections.clear()
        self._locks.clear()
        self._runs.clear()
        self._provisions.clear()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return f"host key not verified against known_hosts ({exc})"
    if isinstance(exc, TimeoutError):
        return "no answer (timed out)"
    return str(exc) or type(exc).__name__


def make_provisioner(context: ProvisionerContext) -> SshProvisioner:
    """From ``SLOTBROKER_SSH_*`` (options override): a missing key or known_hosts fails here, at start."""
    return SshProvisioner(
        SshSettings.from_env(context.options), context.max_log_lines, context.max_log_line_bytes
    )


__all__ = ["SshError", "SshProvisioner", "make_provisioner"]
