"""The ``slurm`` provisioner's configuration (the operator's, never a request's) and the host -> node rule.

``SLOTBROKER_SLURM_*`` (docs/planner.md, "In front of a Slurm cluster"):

* ``CONF``: the cluster's slurm.conf for every tool call (``SLURM_CONF``); unset: the tools' default.
* ``BIN_DIR``: where ``scontrol``/``sbatch``/``scancel`` are; unset: ``PATH``.
* ``HOST_PREFIX``: host provider ``<prefix><node>`` is Slurm node ``<node>`` (default ``""``); the
  Slurm importer names hosts with the same prefix, so the two agree.
* ``NODES``: a JSON object of explicit provider name -> node name pairs (they win over the prefix).
* ``SPOOL``: the directory job output goes to; it must be readable by the broker and writable on the
  compute nodes at the same path (a shared filesystem). Default ``<tmp>/slotbroker-slurm``.
* ``USERS``: the reservation's ``users=`` (the account the broker submits as; default its own).
* ``PARTITION``: ``sbatch --partition`` (default: the cluster's default partition).
* ``SYNC_S``: how often the server syncs with Slurm (``services/planner/slurm_drift.py``), seconds;
  0: never (run ``slotbroker admin topology sync-slurm`` instead). Default 60.
"""

from __future__ import annotations

import json
import os
import pwd
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from slotbroker.domain.slurm_text import SAFE_NAME
from slotbroker.services.planner.provisioners.base import Allocation

PREFIX = "SLOTBROKER_SLURM_"


def _own_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


@dataclass(frozen=True)
class SlurmConfig:
    conf: str | None = None
    bin_dir: str | None = None
    host_prefix: str = ""
    nodes: Mapping[str, str] = field(default_factory=dict)
    spool: str = field(default_factory=lambda: os.path.join(tempfile.gettempdir(), "slotbroker-slurm"))
    users: str = field(default_factory=_own_user)
    partition: str | None = None
    sync_s: float = 60.0

    def __post_init__(self) -> None:
        bad = [n for n in self.nodes.values() if not SAFE_NAME.match(n)]
        if bad:
            raise ValueError(f"{PREFIX}NODES: not Slurm node names: {bad}")
        for label, value in (("USERS", self.users), ("PARTITION", self.partition or "x")):
            if not all(SAFE_NAME.match(v) for v in value.split(",")):
                raise ValueError(f"{PREFIX}{label}: {value!r} is not a list of plain names")
        if not os.path.isabs(self.spool):
            raise ValueError(f"{PREFIX}SPOOL must be an absolute path, not {self.spool!r}")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> SlurmConfig:
        known = {k: v for k, v in options.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SlurmConfig:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in ("conf", "bin_dir", "host_prefix", "spool", "users", "partition"):
            raw = env.get(PREFIX + name.upper(), "").strip()
            if raw:
                values[name] = raw
        raw_sync = env.get(PREFIX + "SYNC_S", "").strip()
        if raw_sync:
            try:
                values["sync_s"] = float(raw_sync)
            except ValueError:
                raise ValueError(f"{PREFIX}SYNC_S must be a number of seconds, not {raw_sync!r}") from None
        raw_nodes = env.get(PREFIX + "NODES", "").strip()
        if raw_nodes:
            nodes = json.loads(raw_nodes)
            if not isinstance(nodes, dict) or not all(isinstance(v, str) for v in nodes.values()):
                raise ValueError(f"{PREFIX}NODES must be a JSON object of provider name -> node name")
            values["nodes"] = nodes
        return cls(**values)

    def node_of(self, provider: str) -> str | None:
        """The Slurm node a host provider is, or None (not this cluster's)."""
        if provider in self.nodes:
            return self.nodes[provider]
        if not provider.startswith(self.host_prefix):
            return None
        node = provider[len(self.host_prefix) :]
        return node if SAFE_NAME.match(node) else None


def nodes_of(config: SlurmConfig, allocation: Allocation) -> list[str]:
    """The Slurm nodes of the allocation's hosts, in order, each once (its providers when it does not
    say which are hosts)."""
    names = allocation.hosts or tuple(item.provider for item in allocation.items)
    out: dict[str, None] = {}
    for name in names:
        node = config.node_of(name)
        if node is not None:
            out[node] = None
    return list(out)


__all__ = ["PREFIX", "SlurmConfig", "nodes_of"]
