"""What the ``ssh`` provisioner sends to a host, and where it sends it: targets and shell scripts.

Targets come from the topology (host attributes ``ssh_host``, ``ssh_port``, ``ssh_user``) and the
server's configuration (``SshSettings``), never from a job request. Scripts are fed to ``sh -s`` on the
host's standard input, so the remote login shell only ever parses ``sh -s`` (any login shell works) and
every value from the request is a ``shlex.quote``d word of a POSIX sh script; environment names are
checked (``env_problems``) before they are written as ``export NAME=...``.

One run of a job on one host lives in a directory ``<run_dir>/<tag>`` of the remote account, where the
tag is a hash of (provision id, job id, host): ``mkdir`` of it is the idempotency marker (a retried
submit finds it and starts nothing), ``pid`` holds the run's process group (``setsid``), ``out`` its
output, ``exit`` its exit code once it ended, ``canceled`` marks a cancel. Hosts need a POSIX ``sh``,
``setsid`` (util-linux), ``tail``, ``cut``, ``mkdir``, ``kill`` and fractional ``sleep`` (GNU or busybox).
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from slotbroker.domain.errors import FieldError, pointer

ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
ADDRESS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.:-]{0,252}$")  # a DNS name, IPv4 or IPv6 address
USER_RE = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
RESERVED_PREFIX = "SLOTBROKER_"
EXIT_PREFIX = "exit "

KEY_VAR = "SLOTBROKER_SSH_KEY"
KNOWN_HOSTS_VAR = "SLOTBROKER_SSH_KNOWN_HOSTS"
USER_VAR = "SLOTBROKER_SSH_USER"
RUN_DIR_VAR = "SLOTBROKER_SSH_RUN_DIR"
CONNECT_TIMEOUT_VAR = "SLOTBROKER_SSH_CONNECT_TIMEOUT_S"


@dataclass(frozen=True)
class SshSettings:
    """The operator's SSH configuration (environment, or the provisioner's options).

    key_path: the private key the broker logs in with (``SLOTBROKER_SSH_KEY``; required).
    known_hosts_path: OpenSSH known_hosts with every host's key (``SLOTBROKER_SSH_KNOWN_HOSTS``;
        required: host keys are always verified).
    default_user: the login for hosts without an ``ssh_user`` attribute (``SLOTBROKER_SSH_USER``).
    run_dir: where runs live on the hosts, relative to the login's home (``SLOTBROKER_SSH_RUN_DIR``).
    connect_timeout_s: how long a host may take to answer (``SLOTBROKER_SSH_CONNECT_TIMEOUT_S``).
    grace_s: after SIGTERM, how long a canceled run has before SIGKILL.
    """

    key_path: str
    known_hosts_path: str
    default_user: str | None = None
    run_dir: str = ".slotbroker/runs"
    connect_timeout_s: float = 10.0
    grace_s: float = 5.0

    @classmethod
    def from_env(cls, options: Mapping[str, object] | None = None) -> SshSettings:
        """Options win over the environment. A missing or unreadable key or known_hosts file is a
        ``ValueError`` when the provisioner is made, not a failure on the first job."""
        opts = dict(options or {})

        def pick(name: str, var: str) -> str:
            value = opts.get(name, os.environ.get(var, ""))
            return str(value).strip()

        key, known = pick("key_path", KEY_VAR), pick("known_hosts_path", KNOWN_HOSTS_VAR)
        for var, path in ((KEY_VAR, key), (KNOWN_HOSTS_VAR, known)):
            if not path:
                raise ValueError(f"{var} is not set: the ssh provisioner needs it")
            if not os.access(path, os.R_OK):
                raise ValueError(f"{var}={path}: not a readable file")
        user = pick("default_user", USER_VAR) or None
        if user is not None and not USER_RE.match(user):
            raise ValueError(f"{USER_VAR}={user!r} is not a user name")
        run_dir = pick("run_dir", RUN_DIR_VAR) or cls.run_dir
        timeout = float(pick("connect_timeout_s", CONNECT_TIMEOUT_VAR) or cls.connect_timeout_s)
        grace = float(str(opts.get("grace_s", cls.grace_s)))
        return cls(key, known, user, run_dir, timeout, grace)


@dataclass(frozen=True)
class SshTarget:
    """Where one booked host is reached: ``name`` is the provider's, the rest its attributes'."""

    name: str
    address: str
    port: int
    user: str

    def __str__(self) -> str:
        return f"{self.name} ({self.user}@{self.address}:{self.port})"


def target_of(name: str, attributes: Mapping[str, str], default_user: str | None) -> SshTarget:
    """The host's SSH endpoint from its topology attributes; a ``ValueError`` says what is missing."""
    address = attributes.get("ssh_host", "")
    if not ADDRESS_RE.match(address):
        raise ValueError(f"host {name} has no valid ssh_host attribute (got {address!r})")
    raw_port = attributes.get("ssh_port", "22")
    if not raw_port.isdigit() or not 1 <= int(raw_port) <= 65535:
        raise ValueError(f"host {name}: ssh_port {raw_port!r} is not a port number")
    user = attributes.get("ssh_user") or default_user or ""
    if not USER_RE.match(user):
        raise ValueError(f"host {name} has no valid ssh_user attribute and {USER_VAR} is not set")
    return SshTarget(name, address, int(raw_port), user)


def env_problems(env: Mapping[str, str], argv: Sequence[str]) -> list[FieldError]:
    """What a POSIX shell cannot carry: bad names, names we set ourselves, NUL characters."""
    problems: list[FieldError] = []
    if not argv:
        problems.append(FieldError("/workload/command", "the ssh provisioner needs a command"))
    if any("\0" in part for part in argv):
        problems.append(FieldError("/workload/command", "no NUL characters"))
    for name, value in env.items():
        at = pointer("workload", "env", name)
        if not ENV_NAME_RE.match(name):
            problems.append(FieldError(at, "a name of letters, digits and _, not starting with a digit"))
        elif name.startswith(RESERVED_PREFIX):
            problems.append(FieldError(at, f"names starting with {RESERVED_PREFIX} are set by the broker"))
        elif "\0" in value:
            problems.append(FieldError(at, "no NUL characters"))
    return problems


def run_tag(provision_id: str, key: str, host: str) -> str:
    """A fixed-size, shell-safe directory name per (provision, job, host)."""
    return hashlib.sha256(f"{provision_id}\n{key}\n{host}".encode()).hexdigest()[:32]


def _dir(run_dir: str, tag: str) -> str:
    return f"{shlex.quote(run_dir)}/{tag}"


def start_script(run_dir: str, tag: str, argv: Sequence[str], env: Mapping[str, str]) -> str:
    """Start ``argv`` detached in a new session unless this run already exists. Prints ``started PID``
    or ``exists``. The wrapper records the exit code; output goes to ``out``."""
    exports = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.items())
    words = " ".join(shlex.quote(a) for a in argv)
    wrapper = shlex.quote(
        'echo $$ > ../pid.tmp && mv ../pid.tmp ../pid; "$@" > ../out 2>&1 < /dev/null; '
        "echo $? > ../exit.tmp; mv ../exit.tmp ../exit"
    )
    return f"""set -u
cd || exit 70
mkdir -p {shlex.quote(run_dir)} || exit 70
d={_dir(run_dir, tag)}
if ! mkdir "$d" 2>/dev/null; then echo exists; exit 0; fi
mkdir "$d/work" && cd "$d/work" || exit 70
{exports}setsid sh -c {wrapper} slotbroker-run {words} > /dev/null 2>&1 < /dev/null &
i=0
while [ ! -f "$d/pid" ] && [ "$i" -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
[ -f "$d/pid" ] || {{ echo "the run did not start"; exit 71; }}
echo "started $(cat "$d/pid")"
"""


def status_script(run_dir: str, tag: str, lines: int, line_bytes: int) -> str:
    """First line: ``exit N``, ``canceled``, ``running``, ``lost`` (no exit code and no process left) or
    ``missing`` (no such run); then the last ``lines`` lines of output, each cut to ``line_bytes``."""
    return f"""d={_dir(run_dir, tag)}
cd || exit 70
if [ ! -d "$d" ]; then echo missing; exit 0; fi
p=$(cat "$d/pid" 2>/dev/null)
if [ -f "$d/canceled" ]; then echo canceled
elif [ -f "$d/exit" ]; then echo "{EXIT_PREFIX}$(cat "$d/exit")"
elif [ -n "$p" ] && kill -s 0 -- "-$p" 2>/dev/null; then echo running
else echo lost
fi
tail -n {int(lines)} "$d/out" 2>/dev/null | cut -b 1-{int(line_bytes)}
"""


def _stop(run_dir: str, tag: str, grace_s: float, mark: str) -> str:
    """SIGTERM the run's process group, SIGKILL after ``grace_s``; a run that ended is left alone."""
    rounds = max(1, int(grace_s * 20))
    return f"""d={_dir(run_dir, tag)}
cd || exit 70
if [ -f "$d/pid" ] && [ ! -f "$d/exit" ]; then
  p=$(cat "$d/pid")
  {mark}
  if kill -s TERM -- "-$p" 2>/dev/null; then
    i=0
    while kill -s 0 -- "-$p" 2>/dev/null && [ "$i" -lt {rounds} ]; do sleep 0.05; i=$((i + 1)); done
    kill -s KILL -- "-$p" 2>/dev/null
  fi
fi
"""


def cancel_script(run_dir: str, tag: str, grace_s: float) -> str:
    """Mark the run canceled and stop it (a run that already ended keeps its outcome)."""
    return _stop(run_dir, tag, grace_s, 'touch "$d/canceled"') + "exit 0\n"


def remove_script(run_dir: str, tag: str, grace_s: float) -> str:
    """Stop the run if it still runs, then remove its directory (release)."""
    return _stop(run_dir, tag, grace_s, ":") + 'rm -rf "$d"\nexit 0\n'


__all__ = [
    "SshSettings",
    "SshTarget",
    "cancel_script",
    "env_problems",
    "remove_script",
    "run_tag",
    "start_script",
    "status_script",
    "target_of",
]
