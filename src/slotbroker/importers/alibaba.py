"""Import the node list of Alibaba's GPU cluster trace (``openb_node_list_all_node.csv``, gpu-v2023).

Why: it is a real, published 1,523-node GPU cluster, so the broker can be tried on the inventory of a
production GPU fleet with several GPU models.

Mapping. The trace describes a single cluster, so the document has one region ``alibaba`` holding one
site ``openb`` (the trace gives no geography to split it by), and one host per CSV row named by its ``sn``.

* ``VCPU = cpu_milli // 1000``: the trace counts CPU in thousandths of a core; a fractional core cannot
  be booked, so it is rounded *down* (never promise capacity the node lacks). A row with less than one
  whole core is an error.
* ``MEMORY_MB = memory_mib`` (the broker's MEMORY_MB is MiB).
* ``GPU_<MODEL> = gpu`` where MODEL is the ``model`` column upper-cased with every character other than
  A-Z and 0-9 replaced by ``_`` (``V100M16`` -> ``GPU_V100M16``). Rows with ``gpu`` 0 get no GPU
  inventory; GPU hosts get the trait ``HW_GPU_CUDA`` (every model in the trace is an NVIDIA card).

Malformed rows raise ``ValueError`` naming the line number (the header is line 1) and the column.
"""

from __future__ import annotations

import csv
import io
import re

from slotbroker.domain.inventory import Inventory
from slotbroker.domain.providers import NAME_RE, ProviderKind
from slotbroker.domain.resource_classes import DEVICE_RE
from slotbroker.domain.topology import ProviderNode, Topology

REGION_NAME = "alibaba"
SITE_NAME = "openb"
COLUMNS = ("sn", "cpu_milli", "memory_mib", "gpu", "model")
GPU_TRAIT = "HW_GPU_CUDA"

_NOT_ALNUM = re.compile(r"[^A-Z0-9]")


def parse_alibaba_nodes(text: str) -> Topology:
    """Parse the CSV text of the Alibaba node list into a one-site topology (see the module docstring)."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise ValueError(f"line 1: empty input, expected the header {','.join(COLUMNS)}")
    index = _column_index(header)
    hosts: list[ProviderNode] = []
    seen: dict[str, int] = {}
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        host = _host(row, index, reader.line_num, len(header))
        if host.name in seen:
            raise ValueError(
                f"line {reader.line_num}, column 'sn': duplicate node {host.name!r} "
                f"(first on line {seen[host.name]})"
            )
        seen[host.name] = reader.line_num
        hosts.append(host)
    site = ProviderNode(name=SITE_NAME, kind=ProviderKind.SITE, children=hosts)
    region = ProviderNode(name=REGION_NAME, kind=ProviderKind.REGION, children=[site])
    return Topology(providers=[region])


def normalise_model(model: str) -> str:
    """Upper-case, every non-alphanumeric -> ``_``: ``'V100M16'`` stays, ``'a10-24g'`` -> ``'A10_24G'``."""
    return _NOT_ALNUM.sub("_", model.strip().upper())


def _column_index(header: list[str]) -> dict[str, int]:
    names = [cell.strip() for cell in header]
    missing = [col for col in COLUMNS if col not in names]
    if missing:
        raise ValueError(f"line 1: header lacks column(s) {', '.join(missing)}; expected {','.join(COLUMNS)}")
    return {col: names.index(col) for col in COLUMNS}


def _cell(row: list[str], index: dict[str, int], column: str, line: int, width: int) -> str:
    if len(row) != width:
        raise ValueError(f"line {line}, column {column!r}: expected {width} columns, got {len(row)}")
    return row[index[column]].strip()


def _int_cell(row: list[str], index: dict[str, int], column: str, line: int, width: int) -> int:
    raw = _cell(row, index, column, line, width)
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"line {line}, column {column!r}: {raw!r} is not a whole number") from None
    if value < 0:
        raise ValueError(f"line {line}, column {column!r}: {value} is negative")
    return value


def _host(row: list[str], index: dict[str, int], line: int, width: int) -> ProviderNode:
    name = _cell(row, index, "sn", line, width)
    if not NAME_RE.match(name):
        raise ValueError(f"line {line}, column 'sn': {name!r} is not a valid provider name")
    vcpu = _int_cell(row, index, "cpu_milli", line, width) // 1000
    if vcpu < 1:
        raise ValueError(f"line {line}, column 'cpu_milli': less than one whole core")
    memory = _int_cell(row, index, "memory_mib", line, width)
    if memory < 1:
        raise ValueError(f"line {line}, column 'memory_mib': must be positive")
    inventories = {"VCPU": Inventory(total=vcpu), "MEMORY_MB": Inventory(total=memory)}
    traits: list[str] = []
    gpus = _int_cell(row, index, "gpu", line, width)
    if gpus > 0:
        inventories[_gpu_class(_cell(row, index, "model", line, width), line)] = Inventory(total=gpus)
        traits.append(GPU_TRAIT)
    return ProviderNode(name=name, kind=ProviderKind.HOST, traits=traits, inventories=inventories)


def _gpu_class(model: str, line: int) -> str:
    resource_class = "GPU_" + normalise_model(model)
    if not model.strip() or not DEVICE_RE.match(resource_class):
        raise ValueError(f"line {line}, column 'model': {model!r} does not make a GPU_<MODEL> class name")
    return resource_class
