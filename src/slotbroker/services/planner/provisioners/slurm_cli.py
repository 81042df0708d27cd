"""The Slurm command-line tools as async calls: the one place the Slurm provisioner starts processes.

Why a separate adapter: the provisioner's rules (names, idempotency, state mapping, what follows a lease)
read as plain code over these calls, and nothing else in it touches a process. Every call is an
argument list run without a shell; the values in it are names the provisioner validated
(``domain.slurm_text.SAFE_NAME``, ``JOB_ID``) or times it formatted. A batch script goes in on stdin.

The tools get a small environment of their own, never this process's (which holds the database URL):
``PATH``, ``LANG``, ``TZ`` (``scontrol`` reads and prints local times), ``SLURM_CONF`` when configured,
and nothing else; a job submitted with ``sbatch`` inherits exactly that plus the workload's checked
``env`` (the tools' own variables win over it).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field

from slotbroker.domain.slurm_text import parse_records

INHERITED = ("PATH", "LANG", "TZ")
TIMEOUT_S = 60.0


class SlurmCommandError(Exception):
    """A Slurm tool exited non-zero; ``stderr`` says why (Slurm's own words, from stderr or else stdout)."""

    def __init__(self, argv: list[str], code: int, stderr: str) -> None:
        self.argv, self.code, self.stderr = argv, code, stderr.strip()
        super().__init__(f"{' '.join(argv[:3])}: {self.stderr or f'exit {code}'}")


@dataclass
class SlurmCommands:
    """``scontrol``/``sbatch``/``squeue``/``scancel`` against one cluster. ``conf``: its slurm.conf (None: the
    tools' default); ``bin_dir``: where the tools are (None: ``PATH``)."""

    conf: str | None = None
    bin_dir: str | None = None
    timeout_s: float = TIMEOUT_S
    env: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.env = {name: os.environ[name] for name in INHERITED if name in os.environ}
        self.env.setdefault("PATH", os.defpath)
        if self.conf:
            self.env["SLURM_CONF"] = self.conf

    def _tool(self, name: str) -> str:
        return os.path.join(self.bin_dir, name) if self.bin_dir else name

    async def run(self, argv: list[str], stdin: str | None = None, env: dict[str, str] | None = None) -> str:
        """Run ``argv`` (the tool's name first), with ``env`` added to the tools' own environment; its
        stdout, or ``SlurmCommandError``."""
        full = [self._tool(argv[0]), *argv[1:]]
        try:
            proc = await asyncio.create_subprocess_exec(
                *full,
                env=self.env if env is None else {**env, **self.env},
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise SlurmCommandError(full, -1, f"cannot start {argv[0]}: {exc}") from exc
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(None if stdin is None else stdin.encode()), self.timeout_s
            )
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise SlurmCommandError(full, -1, f"timed out after {self.timeout_s:g} s") from None
        if proc.returncode != 0:  # scontrol says some refusals ("... not found") on stdout
            why = err.decode("utf-8", "replace").strip() or out.decode("utf-8", "replace")
            raise SlurmCommandError(full, proc.returncode or -1, why)
        return out.decode("utf-8", "replace")

    # -- reservations -----------------------------------------------------------------------------------
    async def reservations(self) -> list[dict[str, str]]:
        text = await self.run(["scontrol", "show", "reservation", "-o"])
        return parse_records(text, "ReservationName")

    async def reservation(self, name: str) -> dict[str, str] | None:
        try:
            text = await self.run(["scontrol", "show", "reservation", "-o", name])
        except SlurmCommandError as exc:
            if "not found" in exc.stderr.lower():
                return None
            raise
        found = parse_records(text, "ReservationName")
        return found[0] if found else None

    async def create_reservation(self, name: str, nodes: list[str], start: str, end: str, users: str) -> None:
        await self.run(
            [
                "scontrol",
                "create",
                "reservation",
                f"reservationname={name}",
                f"starttime={start}",
                f"endtime={end}",
                f"nodes={','.join(nodes)}",
                f"users={users}",
            ]
        )

    async def update_reservation(self, name: str, **fields: str) -> None:
        settings = [f"{k}={v}" for k, v in fields.items()]
        await self.run(["scontrol", "update", f"reservationname={name}", *settings])

    async def delete_reservation(self, name: str) -> bool:
        """Delete it; False if Slurm did not know it (already gone)."""
        try:
            await self.run(["scontrol", "delete", f"reservationname={name}"])
        except SlurmCommandError as exc:
            if "reservation is invalid" in exc.stderr.lower() or "not found" in exc.stderr.lower():
                return False
            raise
        return True

    async def hostnames(self, hostlist: str) -> list[str]:
        """Slurm's own expansion of a host list (``n[2-3]`` -> ``n2``, ``n3``)."""
        return (await self.run(["scontrol", "show", "hostnames", hostlist])).split()

    # -- jobs ------------------------------------------------------------------------------------------
    async def sbatch(self, options: list[str], script: str, env: dict[str, str]) -> str:
        """Submit ``script`` (on stdin) with ``env`` for the job (sbatch passes its environment on); the
        job id. The tools' own variables win over ``env``."""
        out = await self.run(["sbatch", "--parsable", *options], stdin=script, env=env)
        return out.strip().split(";")[0]

    async def jobs_in(self, reservation: str) -> list[tuple[str, str, str]]:
        """(job id, job name, state) of every job slurmctld still holds in ``reservation`` (finished
        ones for ``MinJobAge``): one ``squeue`` filtered by slurmctld, not the whole job table."""
        text = await self.run(
            ["squeue", "--noheader", f"--reservation={reservation}", "--states=all", "--format=%i|%j|%T"]
        )
        out = []
        for line in text.splitlines():
            job_id, _, rest = line.strip().partition("|")
            name, _, state = rest.rpartition("|")
            if job_id:
                out.append((job_id, name, state))
        return out

    async def job(self, job_id: str) -> dict[str, str] | None:
        try:
            text = await self.run(["scontrol", "show", "job", "-o", job_id])
        except SlurmCommandError as exc:
            if "invalid job id" in exc.stderr.lower():
                return None
            raise
        found = parse_records(text, "JobId")
        return found[0] if found else None

    async def scancel(self, job_id: str) -> None:
        await self.run(["scancel", job_id])

    # -- inventory -------------------------------------------------------------------------------------
    async def show_nodes(self) -> str:
        return await self.run(["scontrol", "show", "nodes", "-o"])

    async def show_partitions(self) -> str:
        return await self.run(["scontrol", "show", "partitions", "-o"])


__all__ = ["SlurmCommandError", "SlurmCommands"]
