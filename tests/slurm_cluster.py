"""A real Slurm cluster for tests: munged, slurmctld and three slurmd (``n1``..``n3``) on this machine.

Why real daemons: the Slurm provisioner's contract is with ``scontrol``/``sbatch``/``scancel`` and with
what slurmctld accepts or refuses (overlapping reservations, drained nodes, job states); a fake would
only test our own reading of Slurm's manual. Recipe: /work/shared/slurm-on-loopback.md (Slurm 22.05).

Everything lives in a temporary directory: a throw-away munge key and socket (``AuthInfo=socket=...`` in
the generated slurm.conf, so every client tool that reads it talks to this munged), state, spool, logs
and pid files. Ports are picked free at start, so two test runs on one machine do not collide. Every
command gets ``SLURM_CONF`` pointing at the generated file; nothing touches /etc/slurm or /etc/munge.
Without the binaries the tests skip, except with CI=true, where they fail (like ``require_postgres``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BINARIES = ("munged", "slurmctld", "slurmd", "scontrol", "sbatch", "squeue", "scancel", "sinfo")
NODES = ("n1", "n2", "n3")
CPUS = 2
MEMORY_MB = 1000
START_TIMEOUT_S = 60.0
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing_binaries() -> list[str]:
    found = {name: shutil.which(name) or _sbin(name) for name in BINARIES}
    return [name for name, path in found.items() if path is None]


def _sbin(name: str) -> str | None:
    for d in ("/usr/sbin", "/sbin", "/usr/local/sbin"):
        p = Path(d) / name
        if p.exists():
            return str(p)
    return None


def _binary(name: str) -> str:
    path = shutil.which(name) or _sbin(name)
    assert path is not None, name
    return path


def require_slurm() -> None:
    """Skip without the Slurm/munge binaries, fail instead under CI=true (CI never skips them)."""
    missing = missing_binaries()
    if missing:
        why = f"missing {', '.join(missing)} (apt-get install slurm-wlm munge)"
    elif os.geteuid() != 0:
        why = "the Slurm test cluster runs its daemons as root (SlurmUser=root)"
    else:
        return
    if IN_CI:
        pytest.fail(f"the Slurm tests need real daemons when CI=true: {why}")
    pytest.skip(f"Slurm unavailable: {why}; set CI=true to make this an error")


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a parent that does not reap counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports free right now (held open together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class SlurmCluster:
    """The daemons of one test cluster; ``run`` calls a client tool against it."""

    root: Path
    nodes: tuple[str, ...] = NODES
    conf: Path = field(init=False)
    munge_socket: Path = field(init=False)
    env: dict[str, str] = field(init=False)
    _munged_pid: int | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.conf = self.root / "slurm.conf"
        self.munge_socket = self.root / "munge" / "munge.socket"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> None:
        self._start_munged()
        ports = free_ports(1 + len(self.nodes))
        self._write_conf(ports[0], ports[1:])
        self._daemon([_binary("slurmctld")])
        for node in self.nodes:
            self._daemon([_binary("slurmd"), "-N", node])
        self.wait_idle()

    def stop(self) -> None:
        """``scontrol shutdown`` stops slurmctld and every slurmd; then munged by its pid file."""
        subprocess.run(
            [_binary("scontrol"), "shutdown"], env=self.env, capture_output=True, timeout=30, check=False
        )
        for pidfile in sorted((self.root / "run").glob("*.pid")):
            self._wait_gone(pidfile)
        if self._munged_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._munged_pid, signal.SIGTERM)
            self._wait_pid(self._munged_pid)  # it writes its seed file on the way out
            self._munged_pid = None

    def _wait_gone(self, pidfile: Path) -> None:
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        self._wait_pid(pid)

    @staticmethod
    def _wait_pid(pid: int, timeout_s: float = 15.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):  # it ignored the shutdown; ours, by its pid file
            os.kill(pid, signal.SIGKILL)

    def _start_munged(self) -> None:
        d = self.munge_socket.parent
        d.mkdir(mode=0o700)
        key = d / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        pidfile = d / "munged.pid"
        subprocess.run(
            [
                _binary("munged"),
                f"--socket={self.munge_socket}",
                f"--key-file={key}",
                f"--pid-file={pidfile}",
                f"--log-file={d / 'munged.log'}",
                f"--seed-file={d / 'munged.seed'}",
                "--force",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        self._munged_pid = int(pidfile.read_text().strip())

    def _write_conf(self, ctld_port: int, node_ports: Sequence[int]) -> None:
        for sub in ("state", "spool", "log", "run"):
            (self.root / sub).mkdir(exist_ok=True)
        host = socket.gethostname().split(".")[0]
        lines = [
            "ClusterName=sbtest",
            f"SlurmctldHost={host}(127.0.0.1)",
            f"SlurmctldPort={ctld_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={self.root / 'state'}",
            f"SlurmdSpoolDir={self.root / 'spool'}/%n",
            f"SlurmctldPidFile={self.root / 'run' / 'slurmctld.pid'}",
            f"SlurmdPidFile={self.root / 'run'}/slurmd-%n.pid",
            f"SlurmctldLogFile={self.root / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={self.root / 'log'}/slurmd-%n.log",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "MpiDefault=none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "SchedulerType=sched/backfill",
            "SchedulerParameters=bf_interval=1,sched_interval=1",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "ReturnToService=2",
            "MinJobAge=300",
            "SlurmdTimeout=30",
            "InactiveLimit=0",
            "KillWait=2",
            "GresTypes=gpu",
        ]
        for node, port in zip(self.nodes, node_ports, strict=True):
            lines.append(
                f"NodeName={node} NodeHostname={host} NodeAddr=127.0.0.1 Port={port} "
                f"CPUs={CPUS} RealMemory={MEMORY_MB} Feature=fast,{node}side State=UNKNOWN"
            )
        members = ",".join(self.nodes)
        lines.append(f"PartitionName=debug Nodes={members} Default=YES MaxTime=INFINITE State=UP")
        self.conf.write_text("\n".join(lines) + "\n")

    def _daemon(self, argv: list[str]) -> None:
        done = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()}\n{self.logs()}")

    def wait_idle(self, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            done = subprocess.run(
                [_binary("sinfo"), "-h", "-N", "-o", "%N %t"],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            last = done.stdout + done.stderr
            states = dict(line.split() for line in done.stdout.splitlines() if len(line.split()) == 2)
            if done.returncode == 0 and all(states.get(n) == "idle" for n in self.nodes):
                return
            time.sleep(0.5)
        raise RuntimeError(f"Slurm nodes not idle after {timeout_s:g} s: {last!r}\n{self.logs()}")

    def logs(self) -> str:
        out = []
        for f in sorted((self.root / "log").glob("*.log")):
            out.append(f"--- {f.name}\n" + "\n".join(f.read_text(errors="replace").splitlines()[-15:]))
        return "\n".join(out)

    # -- client tools -------------------------------------------------------------------------------
    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        full = [_binary(argv[0]), *argv[1:]]
        done = subprocess.run(full, env=self.env, capture_output=True, text=True, timeout=60, check=False)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
        return done

    def reservations(self) -> dict[str, dict[str, str]]:
        """``scontrol show reservation -o`` as name -> fields."""
        text = self.run("scontrol", "show", "reservation", "-o").stdout
        out: dict[str, dict[str, str]] = {}
        for line in text.splitlines():
            fields = dict(tok.split("=", 1) for tok in line.split() if "=" in tok)
            if "ReservationName" in fields:
                out[fields["ReservationName"]] = fields
        return out


def start_cluster() -> tuple[SlurmCluster, str]:
    """A started cluster in a fresh temporary directory (and that directory, to remove after stop)."""
    root = tempfile.mkdtemp(prefix="sb-slurm-")
    os.chmod(root, 0o755)
    cluster = SlurmCluster(Path(root))
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster, root


__all__ = ["NODES", "SlurmCluster", "free_ports", "missing_binaries", "require_slurm", "start_cluster"]
