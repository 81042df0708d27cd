"""The ``local`` provisioner: runs a workload's command as a subprocess on this machine.

A provision is a bookkeeping slot (nothing to set up locally), ready at once. ``submit`` starts
``command + args`` (no shell; use ``["sh", "-c", "..."]`` for one) with the workload's ``env`` over this
process's environment plus ``SLOTBROKER_JOB_ID`` and ``SLOTBROKER_LEASE_ID``; stdout and stderr are read
into a bounded tail (``max_log_lines`` lines of at most ``max_log_line_bytes`` bytes each). Exit code 0 is
``succeeded``, anything else ``failed``. ``cancel`` sends SIGTERM, then SIGKILL after ``grace_s``.
``release`` stops what still runs on the provision and forgets it, so memory stays bounded by the jobs
that are running. Runs do not survive a restart of this process: reconciliation finds them ``unknown``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque
from dataclasses import dataclass, field

from slotbroker.domain.jobs import Workload
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


@dataclass
class _LocalRun:
    process: asyncio.subprocess.Process
    provision_id: str
    tail: deque[str]
    reader: asyncio.Task[None] | None = None
    canceled: bool = False
    dropped: int = 0


@dataclass
class LocalProvisioner(Provisioner):
    max_log_lines: int = 1000
    max_log_line_bytes: int = 4096
    grace_s: float = 5.0
    name: str = "local"
    _provisions: dict[str, str] = field(default_factory=dict)  # key -> provision id
    _runs: dict[str, _LocalRun] = field(default_factory=dict)  # run id (the key) -> run

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
        env = {**os.environ, **workload.env}
        env["SLOTBROKER_JOB_ID"] = key
        env["SLOTBROKER_LEASE_ID"] = provision.allocation.lease_id
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise ProvisionerError(f"cannot start {argv[0]!r}: {exc}") from exc
        tail: deque[str] = deque(maxlen=self.max_log_lines)
        run = _LocalRun(process, provision.provision_id, tail)
        run.reader = asyncio.create_task(self._read(run))
        self._runs[key] = run
        return key

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
        self._runs.clear()
        self._provisions.clear()


def make_provisioner(context: ProvisionerContext) -> LocalProvisioner:
    grace = float(context.options.get("grace_s", 5.0))
    return LocalProvisioner(context.max_log_lines, context.max_log_line_bytes, grace)


__all__ = ["LocalProvisioner", "make_provisioner"]
