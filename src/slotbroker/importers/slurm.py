"""Import a running Slurm cluster: ``scontrol show nodes -o`` (and ``scontrol show partitions -o``) text
into a topology document.

Why: an operator who puts slotbroker in front of a Slurm cluster should not retype its nodes; and the
host names this importer writes (``<host_prefix><node>``) are exactly what the ``slurm`` provisioner maps
back to Slurm nodes (``SLOTBROKER_SLURM_HOST_PREFIX``), so a lease on these hosts becomes a reservation
on those nodes.

Mapping: one region (``region``, default ``slurm``) holding one site (``site``, default the cluster's
name or ``slurm``), one host per node record:

* ``VCPU`` = ``CPUTot`` (``CPUs`` when absent), ``MEMORY_MB`` = ``RealMemory`` (skipped when 0/unset);
* GPUs from ``Gres``: ``gpu:a100:4(S:0-1)`` -> ``GPU_A100`` = 4, an untyped ``gpu:2`` -> ``GPU_GENERIC``
  (Slurm did not say the model; none is invented); other GRES (``mps``, ``shard``...) are not imported;
* partitions -> aggregates ``<site>:<partition>`` (aggregates are global, partitions are per cluster),
  read from each node's ``Partitions=`` field, so no host-list expansion is needed; with the partitions
  output given, only partitions it lists count (``scontrol`` may list a node in a partition being
  removed);
* features (``AvailableFeatures``) -> custom traits ``CUSTOM_SLURM_<FEATURE>`` (upper-cased, other
  characters as ``_``), registered in the document's ``traits``.

Node state (down, drained) is not inventory: it changes by the minute, and the drift sync
(``services/planner/slurm_drift.py``) records it as capacity that is not free instead.
"""

from __future__ import annotations

import re

from slotbroker.domain.inventory import Inventory
from slotbroker.domain.providers import NAME_RE, ProviderKind
from slotbroker.domain.slurm_text import is_null, parse_records, split_list
from slotbroker.domain.topology import ProviderNode, Topology

GENERIC_GPU = "GPU_GENERIC"
_NOT_ALNUM = re.compile(r"[^A-Z0-9]+")
_GRES = re.compile(r"^gpu(?::([^:(]+))?:(\d+)")


def feature_trait(feature: str) -> str:
    """``fast-net`` -> ``CUSTOM_SLURM_FAST_NET``."""
    return "CUSTOM_SLURM_" + (_NOT_ALNUM.sub("_", feature.upper()).strip("_") or "X")


def gpu_classes(gres: str | None) -> dict[str, int]:
    """GPU counts per resource class from a node's ``Gres`` field (``gpu:a100:4(S:0-1),gpu:2``)."""
    out: dict[str, int] = {}
    for part in split_list(_top_level(gres or "")):
        m = _GRES.match(part.strip())
        if not m:
            continue
        kind = m.group(1)
        rc = f"GPU_{_NOT_ALNUM.sub('_', kind.upper()).strip('_')}" if kind else GENERIC_GPU
        out[rc] = out.get(rc, 0) + int(m.group(2))
    return {rc: n for rc, n in out.items() if n > 0}


def _top_level(value: str) -> str:
    """Drop parenthesised socket lists, whose commas are not separators (``(S:0,1)``)."""
    depth, kept = 0, []
    for ch in value:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif depth == 0:
            kept.append(ch)
    return "".join(kept)


def _whole(record: dict[str, str], *keys: str) -> int:
    for key in keys:
        raw = record.get(key)
        if not is_null(raw):
            try:
                return int(str(raw).rstrip("M"))
            except ValueError:
                node = record.get("NodeName")
                raise ValueError(f"node {node}: {key}={raw!r} is not a whole number") from None
    return 0


def parse_slurm(
    nodes_text: str,
    partitions_text: str | None = None,
    *,
    region: str = "slurm",
    site: str | None = None,
    host_prefix: str = "",
) -> Topology:
    """The topology of the cluster the text describes (see the module docstring)."""
    nodes = parse_records(nodes_text, "NodeName")
    if not nodes:
        raise ValueError("no node records (expected `scontrol show nodes -o` output)")
    site_name = site or "slurm"
    for label, name in (("region", region), ("site", site_name)):
        if not NAME_RE.match(name):
            raise ValueError(f"{name!r} is not a valid provider name for the {label}")
    known = None
    if partitions_text is not None:
        known = {r["PartitionName"] for r in parse_records(partitions_text, "PartitionName")}
    traits: dict[str, None] = {}
    hosts: list[ProviderNode] = []
    seen: set[str] = {region, site_name}
    for record in nodes:
        name = f"{host_prefix}{record['NodeName']}"
        if not NAME_RE.match(name) or name in seen:
            raise ValueError(f"node {record['NodeName']!r}: {name!r} is not a valid, unused provider name")
        seen.add(name)
        inventories: dict[str, Inventory] = {}
        cpus = _whole(record, "CPUTot", "CPUs")
        if cpus > 0:
            inventories["VCPU"] = Inventory(total=cpus)
        memory = _whole(record, "RealMemory")
        if memory > 0:
            inventories["MEMORY_MB"] = Inventory(total=memory)
        for rc, n in gpu_classes(record.get("Gres")).items():
            inventories[rc] = Inventory(total=n)
        features = split_list(record.get("AvailableFeatures") or record.get("Features"))
        host_traits = [feature_trait(f) for f in features]
        traits.update(dict.fromkeys(host_traits))
        partitions = [p for p in split_list(record.get("Partitions")) if known is None or p in known]
        aggregates = [f"{site_name}:{p}" for p in partitions]
        hosts.append(
            ProviderNode(
                name=name,
                kind=ProviderKind.HOST,
                inventories=inventories,
                traits=list(dict.fromkeys(host_traits)),
                aggregates=aggregates,
            )
        )
    site_node = ProviderNode(name=site_name, kind=ProviderKind.SITE, children=hosts)
    return Topology(
        traits=list(traits),
        providers=[ProviderNode(name=region, kind=ProviderKind.REGION, children=[site_node])],
    )


def cluster_name(config_text: str) -> str | None:
    """``ClusterName`` from ``scontrol show config`` output, if it says."""
    for line in config_text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "ClusterName" and value.strip():
            return value.strip()
    return None


__all__ = ["GENERIC_GPU", "cluster_name", "feature_trait", "gpu_classes", "parse_slurm"]
