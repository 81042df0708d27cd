"""A real OpenSSH server for the SSH provisioner's tests: ``sshd -D`` on a free loopback port, listening on
two addresses (127.0.0.2 and 127.0.0.3: two "hosts", two distinct endpoints), with a throw-away host key,
a throw-away client key and everything else (authorized keys, pid file, known_hosts) in a temp dir.

Without an sshd binary the tests skip with a clear message, except with CI=true, where they fail (CI
installs openssh-server: ``.ci/run``). The server logs to ``<dir>/sshd.log`` (``-E``), shown on failure.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest

ADDRESSES = ("127.0.0.2", "127.0.0.3")
SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class SshServer:
    """A running sshd: its ``port`` on each of ``addresses``, the client key and known_hosts the broker is
    configured with, the login ``user``, and a second host key nobody trusts (a "wrong" known_hosts)."""

    addresses: tuple[str, ...]
    port: int
    user: str
    client_key: Path
    known_hosts: Path
    wrong_known_hosts: Path
    directory: Path
    log: Path
    pid: int


def find_sshd() -> str | None:
    found = shutil.which("sshd")
    if found:
        return found
    return next((p for p in SSHD_CANDIDATES if os.access(p, os.X_OK)), None)


def require_sshd() -> str:
    sshd = find_sshd()
    if sshd is None:
        if IN_CI:
            pytest.fail("sshd (openssh-server) is required when CI=true: .ci/run installs it")
        pytest.skip("sshd (openssh-server) is not installed; set CI=true to make this an error")
    return sshd


def free_port() -> int:
    """A port free on every address (the kernel picks one on the first, the others are checked)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind((ADDRESSES[0], 0))
            port = int(first.getsockname()[1])
            try:
                for address in ADDRESSES[1:]:
                    with socket.socket() as other:
                        other.bind((address, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no port free on all loopback test addresses")


def _write_key(path: Path, key: asyncssh.SSHKey) -> None:
    key.write_private_key(str(path))
    path.chmod(0o600)


def _config(directory: Path, port: int, host_key: Path, user: str) -> str:
    listen = "\n".join(f"ListenAddress {a}:{port}" for a in ADDRESSES)
    return f"""{listen}
HostKey {host_key}
PidFile {directory / "sshd.pid"}
AuthorizedKeysFile {directory / "authorized_keys"}
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin prohibit-password
AllowUsers {user}
X11Forwarding no
AllowTcpForwarding no
PrintMotd no
LogLevel VERBOSE
"""


def _wait_listening(process: subprocess.Popen[bytes], port: int, log: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    pending = list(ADDRESSES)
    while pending:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with socket.create_connection((pending[0], port), timeout=1):
                pending.pop(0)
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"sshd is not listening on {pending[0]}:{port}:\n{log.read_text(errors='replace')}"
                ) from None
            time.sleep(0.05)


@contextlib.contextmanager
def ssh_server() -> Iterator[SshServer]:
    """Start sshd (see the module docstring) and stop it on exit."""
    sshd = require_sshd()
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    user = getpass.getuser()
    with tempfile.TemporaryDirectory(prefix="slotbroker-sshd-") as tmp:
        directory = Path(tmp)
        host_key, other_host_key = (
            asyncssh.generate_private_key("ssh-ed25519"),
            asyncssh.generate_private_key("ssh-ed25519"),
        )
        client = asyncssh.generate_private_key("ssh-ed25519")
        _write_key(directory / "host_key", host_key)
        _write_key(directory / "client_key", client)
        (directory / "authorized_keys").write_bytes(client.export_public_key())
        port = free_port()
        trusted = host_key.export_public_key().decode().strip()
        untrusted = other_host_key.export_public_key().decode().strip()
        (directory / "known_hosts").write_text("".join(f"[{a}]:{port} {trusted}\n" for a in ADDRESSES))
        (directory / "wrong_known_hosts").write_text(
            "".join(f"[{a}]:{port} {untrusted}\n" for a in ADDRESSES)
        )
        config = directory / "sshd_config"
        config.write_text(_config(directory, port, directory / "host_key", user))
        log = directory / "sshd.log"
        check = subprocess.run([sshd, "-t", "-f", str(config)], capture_output=True, text=True, check=False)
        if check.returncode != 0:
            raise RuntimeError(f"sshd rejected the test configuration: {check.stderr}")
        process = subprocess.Popen([sshd, "-D", "-f", str(config), "-E", str(log)])
        try:
            _wait_listening(process, port, log)
            yield SshServer(
                ADDRESSES,
                port,
                user,
                directory / "client_key",
                directory / "known_hosts",
                directory / "wrong_known_hosts",
                directory,
                log,
                process.pid,
            )
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
