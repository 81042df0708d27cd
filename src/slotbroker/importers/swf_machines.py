"""Import Alea/AleaNG ``.machines`` cluster lists (the machine side of SWF workload experiments).

Why: the Alea scheduling simulator ships real cluster descriptions (MetaCentrum, CERIT-SC, HPC2N) next to
SWF job logs; importing them lets the broker replay those logs against the same machines.

Format, as read by Alea's ``MachineLoader`` (aleasimulator/alea and aleasimulator/AleaNG): one cluster per
line, fields separated by whitespace (tabs in the published files):

====  ===============================================================================================
col   meaning
====  ===============================================================================================
0     cluster id (an integer; not used here)
1     cluster name
2     number of nodes
3     CPU cores (Alea "PEs") per node
4     per-core speed rating (Alea's ``peRating``; ignored here, the broker has no speed class)
5     RAM per node: KB as in SWF, or GB when below 10240 (AleaNG's rule; NGI_CZ is in GB, older files
      in KB)
6     AleaNG only: a description / speed figure (ignored)
7     AleaNG only: GPUs per node (absent in older files, meaning none)
====  ===============================================================================================

Mapping: one region (``region``, default ``swf``), each cluster a site named as in the file, each node a
host ``<cluster>-<n>`` numbered from 1 and zero-padded to the width of the node count (``adan-01`` ..
``adan-61``). Hosts get ``VCPU`` = cores, ``MEMORY_MB`` (GB * 1024, or KB // 1024 rounded down), and, when
the GPU count is positive, ``GPU_GENERIC``: the files do not name the GPU model, so none is invented. RAM
is required (Alea's 1 MB default for a missing column is no useful inventory).

Blank lines and lines starting with ``;`` or ``#`` are skipped. Malformed lines raise ``ValueError`` naming
the line number and the column.
"""

from __future__ import annotations

from dataclasses import dataclass

from slotbroker.domain.inventory import Inventory
from slotbroker.domain.providers import NAME_RE, ProviderKind
from slotbroker.domain.topology import ProviderNode, Topology

GPU_CLASS = "GPU_GENERIC"
GB_THRESHOLD = 10 * 1024  # AleaNG: a RAM figure below this is GB, otherwise KB
MIN_COLUMNS = 6
MAX_COLUMNS = 8
COLUMN_NAMES = ("id", "name", "nodes", "cores", "rating", "ram", "description", "gpus")


@dataclass(frozen=True)
class ClusterLine:
    """One parsed line of a ``.machines`` file."""

    line: int
    name: str
    nodes: int
    cores: int
    memory_mb: int
    gpus: int


def parse_swf_machines(text: str, *, region: str = "swf") -> Topology:
    """Parse a ``.machines`` file into region -> cluster sites -> node hosts (see the module docstring)."""
    if not NAME_RE.match(region):
        raise ValueError(f"{region!r} is not a valid provider name for the region")
    taken: dict[str, int] = {region: 0}
    sites: list[ProviderNode] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith((";", "#")):
            continue
        cluster = parse_line(stripped, number)
        site = _site(cluster)
        for name in [site.name, *(host.name for host in site.children)]:
            if name in taken:
                raise ValueError(f"line {number}, column 'name': provider name {name!r} is already used")
            taken[name] = number
        sites.append(site)
    return Topology(providers=[ProviderNode(name=region, kind=ProviderKind.REGION, children=sites)])


def parse_line(line_text: str, number: int) -> ClusterLine:
    """Parse one non-comment line; ``number`` is its 1-based line number, used in errors."""
    fields = line_text.split()
    if not MIN_COLUMNS <= len(fields) <= MAX_COLUMNS:
        raise ValueError(
            f"line {number}: expected {MIN_COLUMNS} to {MAX_COLUMNS} whitespace-separated columns "
            f"({' '.join(COLUMN_NAMES)}), got {len(fields)}"
        )
    _whole(fields, 0, number, minimum=0)
    name = fields[1]
    if not NAME_RE.match(name):
        raise ValueError(f"line {number}, column 'name': {name!r} is not a valid provider name")
    gpus = _whole(fields, 7, number, minimum=0) if len(fields) > 7 else 0
    return ClusterLine(
        line=number,
        name=name,
        nodes=_whole(fields, 2, number, minimum=1),
        cores=_whole(fields, 3, number, minimum=1),
        memory_mb=ram_to_mb(_whole(fields, 5, number, minimum=1)),
        gpus=gpus,
    )


def ram_to_mb(ram: int) -> int:
    """AleaNG's rule: below 10240 the figure is GB, else KB (SWF's unit); KB are rounded down to MB."""
    if ram < GB_THRESHOLD:
        return ram * 1024
    return ram // 1024


def _whole(fields: list[str], column: int, number: int, *, minimum: int) -> int:
    raw = fields[column]
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(
            f"line {number}, column {column} ({COLUMN_NAMES[column]}): {raw!r} is not a whole number"
        ) from None
    if value < minimum:
        raise ValueError(
            f"line {number}, column {column} ({COLUMN_NAMES[column]}): {value} is below {minimum}"
        )
    return value


def _site(cluster: ClusterLine) -> ProviderNode:
    width = len(str(cluster.nodes))
    hosts = [_host(f"{cluster.name}-{n:0{width}d}", cluster) for n in range(1, cluster.nodes + 1)]
    return ProviderNode(name=cluster.name, kind=ProviderKind.SITE, children=hosts)


def _host(name: str, cluster: ClusterLine) -> ProviderNode:
    inventories = {"VCPU": Inventory(total=cluster.cores), "MEMORY_MB": Inventory(total=cluster.memory_mb)}
    if cluster.gpus > 0:
        inventories[GPU_CLASS] = Inventory(total=cluster.gpus)
    return ProviderNode(name=name, kind=ProviderKind.HOST, inventories=inventories)
