"""The ``local`` provisioner: runs a workload's command as a subprocess on this machine.

It hands whoever may use it a shell on the broker's host, so it needs the ``operator`` role by default
and is off unless the operator enables it (docs/operations.md, "Security"). What the process gets is
therefore decided here, not inherited: its environment is an allow-list (``PATH`` and ``LANG`` of this
process, ``HOME`` = its scratch directory, the workload's ``env``, then ``SLOTBROKER_JOB_ID`` and
``SLOTBROKER_LEASE_ID``), never this process's environment, which holds the database URL and its
password. It runs in a fresh scratch directory (mode 0700, under the temp dir, removed with the
provision) and, with ``run_as``, as that unprivileged account with no supplementary groups (the server
must then run as root; a wrong account is refused when the provisioner is made, not on the first job).

A provision is a bookkeeping slot (nothing to set up locally), ready at once. ``submit`` starts
``command + args`` (no shell; use ``["sh", "-c", "..."]`` for one); stdout and stderr are read into a
bounded tail (``max_log_lines`` lines of at most ``max_log_line_bytes`` bytes each). Exit code 0 is
``succeeded``, anything else ``failed``. ``cancel`` sends SIGTERM, then SIGKILL after ``grace_s``.
``release`` stops what still runs on the provision, removes its scratch directory and forgets it, so
memory stays bounded by the jobs that are running. Runs do not survive a restart of this process:
reconciliation finds them ``unknown`` (and their scratch directories stay behind, ``slotbroker-job-*``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import tempfile
from collections import deque
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

SCRATCH_PREFIX = "slotbroker-job-"
INHERITED = ("PATH", "LANG")  # the only names taken from this process's environment
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"  # util-linux: run a program as another user


@dataclass(frozen=True)
class _Account:
    uid: int
    gid: int


def _lookup_account(name: str) -> _Account:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ValueError(f"SLOTBROKER_LOCAL_RUN_AS: no user {name!r} on this host") from None
    if os.geteuid() != 0 and entry.pw_uid != os.geteuid():
        raise ValueError(f"SLOTBROKER_LOCAL_RUN_AS={name}: running as another user needs root")
    if not os.access(SETPRIV, os.X_OK):
        raise ValueError(f"SLOTBROKER_LOCAL_RUN_AS={name}: needs setpriv (util-linux) at {SETPRIV}")
    return _Account(entry.pw_uid, entry.pw_gid)


async def _remove(scratch: str) -> None:
    """Off the event loop: a job may leave a large tree behind (symlinks in it are not followed)."""
    await asyncio.to_thread(shutil.rmtree, scratch, True)


@dataclass
class _LocalRun:
    process: asyncio.subprocess.Process
    provision_id: str
    tail: deque[str]
    scratch: str
    reader: asyncio.Task[None] | None = None
    canceled: bool = False
    dropped: int = 0


@dataclass
class LocalProvisioner(Provisioner):
    max_log_lines: int = 1000
    max_log_line_bytes: int = 4096
    grace_s: float = 5.0
    run_as: str | None = None
    name: str = "local"
    min_role: ClassVar[Role] = Role.OPERATOR
    _provisions: dict[str, str] = field(default_factory=dict)  # key -> provision id
    _runs: dict[str, _LocalRun] = field(default_factory=dict)  # run id (the key) -> run
    _account: _Account | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._account = _lookup_account(self.run_as) if self.run_as else None

    async def provision(self, allocation: Allocation, key: str) -> str:
        pid = f"local:{key}"
        self._provisions[key] = pid
        return pid

    async def status(self, provision_id: str) -> ProvisionStatus:
        if provision_id in self._provisions.values():
            return ProvisionStatus(ProvisionPhase.READY)
        return ProvisionStatus(ProvisionPhase.UNKNOWN)

    async def release(self, provision_id: str) -> None:
        for run_id, run in list(self._runs.items()):
            if run.provision_id == provision_id:
                await self._stop(run)
                await _remove(run.scratch)
                del self._runs[run_id]
        for key, pid in list(self._provisions.items()):
            if pid == provision_id:
                del self._provisions[key]

    async def submit(self, workload: Workload, provision: Provision, key: str) -> str:
        if key in self._runs:
            return key
        argv = workload.argv
        if not argv:
            raise ProvisionerError("the local provisioner needs workload.command")
        scratch = tempfile.mkdtemp(prefix=SCRATCH_PREFIX)
        account = self._account
        try:
            if account is not None:
                os.chown(scratch, account.uid, account.gid)
                # setpriv (util-linux) drops to the account before exec, whichever event loop runs us:
                # uvloop, which the server uses, refuses create_subprocess_exec's user/group arguments
                argv = (
                    SETPRIV,
                    f"--reuid={account.uid}",
                    f"--regid={account.gid}",
                    "--clear-groups",
                    "--",
                    *argv,
                )
            process = await asyncio.create_subprocess_exec(
                *argv,
                env=self._environment(workload, provision, key, scratch),
                cwd=scratch,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            shutil.rmtree(scratch, ignore_errors=True)
            raise ProvisionerError(f"cannot start {argv[0]!r}: {exc}") from exc
        tail: deque[str] = deque(maxlen=self.max_log_lines)
        run = _LocalRun(process, provision.provision_id, tail, scratch)
        run.reader = asyncio.create_task(self._read(run))
        self._runs[key] = run
        return key

    @staticmethod
    def _environment(workload: Workload, provision: Provision, key: str, scratch: str) -> dict[str, str]:
        env = {name: os.environ[name] for name in INHERITED if name in os.environ}
        env.setdefault("PATH", os.defpath)
        env["HOME"] = scratch
        env.update(workload.env)
        env["SLOTBROKER_JOB_ID"] = key
        env["SLOTBROKER_LEASE_ID"] = provision.allocation.lease_id
        return env

    async def _read(self, run: _LocalRun) -> None:
        stream = run.process.stdout
        if stream is None:
            return
        while True:
            raw = await stream.readline()
            if not raw:
                return
            line = raw[: self.max_log_line_bytes].decode("utf-8", "replace").rstrip("\r\n")
            if len(run.tail) == run.tail.maxlen:
                run.dropped += 1
            run.tail.append(line)

    def _logs(self, run: _LocalRun) -> tuple[str, ...]:
        head = (f"[{run.dropped} earlier lines dropped]",) if run.dropped else ()
        return (*head, *run.tail)

    async def run_status(self, run_id: str) -> RunStatus:
        run = self._runs.get(run_id)
        if run is None:
            return RunStatus(RunPhase.UNKNOWN)
        code = run.process.returncode
        if code is None:
            return RunStatus(RunPhase.RUNNING)
        if run.reader is not None:
            await run.reader  # the pipe is drained once the process has exited and closed it
        if run.canceled:
            return RunStatus(RunPhase.CANCELED, code, self._logs(run))
        phase = RunPhase.SUCCEEDED if code == 0 else RunPhase.FAILED
        return RunStatus(phase, code, self._logs(run))

    async def cancel(self, run_id: str) -> None:
        run = self._runs.get(run_id)
        if run is not None and run.process.returncode is None:
            run.canceled = True
            await self._stop(run)

    async def _stop(self, run: _LocalRun) -> None:
        if run.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(run.process.pid, 15)
            try:
                await asyncio.wait_for(run.process.wait(), self.grace_s)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(run.process.pid, 9)
                await run.process.wait()
        if run.reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(run.reader, self.grace_s)

    async def close(self) -> None:
        for run in list(self._runs.values()):
            await self._stop(run)
            await _remove(run.scratch)
        self._runs.clear()
        self._provisions.clear()


def make_provisioner(context: ProvisionerContext) -> LocalProvisioner:
    grace = float(context.options.get("grace_s", 5.0))
    return LocalProvisioner(context.max_log_lines, context.max_log_line_bytes, grace, context.run_as)


__all__ = ["LocalProvisioner", "make_provisioner"]
