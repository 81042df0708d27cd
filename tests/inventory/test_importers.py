"""The trace importers, on the real published files (skipped when absent) and on small bad inputs."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from pathlib import Path

import pytest

from slotbroker.domain.providers import ProviderKind
from slotbroker.domain.topology import ProviderNode, Registry, Topology, validate_topology
from slotbroker.importers import parse_alibaba_nodes, parse_swf_machines

TRACES = Path(__file__).resolve().parents[2].parent / "shared" / "traces"
ALIBABA = "alibaba_openb_node_list_all_node.csv"
NGI_CZ = "aleang_NGI_CZ.swf.machines"
MACHINE_FILES = (
    NGI_CZ,
    "alea_wagap-2013.swf.machines",
    "alea_hpc2n-subset.swf.machines",
    "accasim_metacentrum2013_mc.swf.machines",
)


def read_trace(name: str) -> str:
    path = TRACES / name
    if not path.is_file():
        pytest.skip(f"trace file {path} is absent (copy it from the source named in PROVENANCE.md)")
    return path.read_text(encoding="utf-8")


def of_kind(doc: Topology, kind: ProviderKind) -> list[ProviderNode]:
    return [node for node, _, _ in doc.walk() if node.kind == kind]


def class_totals(doc: Topology) -> Counter[str]:
    totals: Counter[str] = Counter()
    for host in of_kind(doc, ProviderKind.HOST):
        for rc, inventory in host.inventories.items():
            totals[rc] += inventory.total
    return totals


# --- Alibaba -----------------------------------------------------------------------------------------


def test_alibaba_real_file_has_1523_hosts_in_one_site() -> None:
    doc = parse_alibaba_nodes(read_trace(ALIBABA))
    validate_topology(doc, Registry())
    assert [r.name for r in of_kind(doc, ProviderKind.REGION)] == ["alibaba"]
    assert [s.name for s in of_kind(doc, ProviderKind.SITE)] == ["openb"]
    hosts = of_kind(doc, ProviderKind.HOST)
    assert len(hosts) == 1523
    assert hosts[0].name == "openb-node-0000"


def test_alibaba_real_file_totals_match_an_independent_count() -> None:
    text = read_trace(ALIBABA)
    gpus: Counter[str] = Counter()
    vcpu = memory = gpu_hosts = 0
    for row in csv.DictReader(io.StringIO(text)):
        vcpu += int(row["cpu_milli"]) // 1000
        memory += int(row["memory_mib"])
        if int(row["gpu"]) > 0:
            gpus["GPU_" + re.sub(r"[^A-Z0-9]", "_", row["model"].upper())] += int(row["gpu"])
            gpu_hosts += 1
    doc = parse_alibaba_nodes(text)
    totals = class_totals(doc)
    assert {rc: n for rc, n in totals.items() if rc.startswith("GPU_")} == dict(gpus)
    assert totals["VCPU"] == vcpu
    assert totals["MEMORY_MB"] == memory
    # Figures of the published trace, as a guard against a silently changed file.
    assert gpus["GPU_G2"] == 549 * 8
    assert gpus["GPU_T4"] == 387 * 2 + 17 * 4
    assert sum(1 for h in of_kind(doc, ProviderKind.HOST) if "HW_GPU_CUDA" in h.traits) == gpu_hosts == 1213


def test_alibaba_cpu_is_rounded_down_and_cpu_only_rows_get_no_gpu() -> None:
    doc = parse_alibaba_nodes(
        "sn,cpu_milli,memory_mib,gpu,model\nn1,1999,2048,0,\nn2,8000,4096,2,v100-m16\nn3,4000,1024,0,T4\n"
    )
    n1, n2, n3 = of_kind(doc, ProviderKind.HOST)
    assert n1.inventories["VCPU"].total == 1
    assert set(n1.inventories) == {"VCPU", "MEMORY_MB"}
    assert n1.traits == []
    assert n2.inventories["GPU_V100_M16"].total == 2
    assert n2.traits == ["HW_GPU_CUDA"]
    assert set(n3.inventories) == {"VCPU", "MEMORY_MB"}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("n1,8000,1024,0,\nn2,eight,1024,0,\n", "line 3, column 'cpu_milli'"),
        ("n1,8000,1024,0,\nn2,8000,1024,-1,T4\n", "line 3, column 'gpu'"),
        ("n1,8000,1024,0,\nn2,8000,1024,2,\n", "line 3, column 'model'"),
        ("n1,8000,1024,0,\nn2,8000,1024,2,-T4\n", "line 3, column 'model'"),
        ("n1,8000,1024,0,\nn2,999,1024,0,\n", "line 3, column 'cpu_milli'"),
        ("n1,8000,1024,0,\nn2,8000,0,0,\n", "line 3, column 'memory_mib'"),
        ("n1,8000,1024,0,\nn2,8000,1024\n", "line 3"),
        ("n1,8000,1024,0,\nbad name,8000,1024,0,\n", "line 3, column 'sn'"),
        ("n1,8000,1024,0,\nn1,8000,1024,0,\n", "line 3, column 'sn'"),
    ],
)
def test_alibaba_bad_rows_name_line_and_column(body: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        parse_alibaba_nodes("sn,cpu_milli,memory_mib,gpu,model\n" + body)


def test_alibaba_bad_header_is_line_1() -> None:
    with pytest.raises(ValueError, match="line 1"):
        parse_alibaba_nodes("sn,cpu,memory_mib,gpu,model\nn1,8000,1024,0,\n")
    with pytest.raises(ValueError, match="line 1"):
        parse_alibaba_nodes("")


# --- SWF .machines -----------------------------------------------------------------------------------


def independent_machine_rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line.strip() and line.strip()[0] not in ";#"]


def test_ngi_cz_has_47_sites_and_799_hosts() -> None:
    text = read_trace(NGI_CZ)
    doc = parse_swf_machines(text)
    validate_topology(doc, Registry())
    assert [r.name for r in of_kind(doc, ProviderKind.REGION)] == ["swf"]
    assert len(of_kind(doc, ProviderKind.SITE)) == 47
    assert len(of_kind(doc, ProviderKind.HOST)) == 799
    rows = independent_machine_rows(text)
    totals = class_totals(doc)
    assert totals["GPU_GENERIC"] == sum(int(r[2]) * int(r[7]) for r in rows)
    assert totals["VCPU"] == sum(int(r[2]) * int(r[3]) for r in rows)
    assert totals["MEMORY_MB"] == sum(int(r[2]) * int(r[5]) * 1024 for r in rows)  # NGI_CZ is in GB


def test_ngi_cz_host_names_and_inventories() -> None:
    doc = parse_swf_machines(read_trace(NGI_CZ), region="metacentrum")
    adan = next(s for s in of_kind(doc, ProviderKind.SITE) if s.name == "adan")
    assert len(adan.children) == 61
    assert adan.children[0].name == "adan-01"
    assert adan.children[-1].name == "adan-61"
    inv = {rc: i.total for rc, i in adan.children[0].inventories.items()}
    assert inv == {"VCPU": 32, "MEMORY_MB": 192 * 1024, "GPU_GENERIC": 2}
    black = next(s for s in of_kind(doc, ProviderKind.SITE) if s.name == "black")
    assert [h.name for h in black.children] == ["black-1"]
    assert "GPU_GENERIC" not in black.children[0].inventories
    assert of_kind(doc, ProviderKind.REGION)[0].name == "metacentrum"


@pytest.mark.parametrize("name", MACHINE_FILES)
def test_every_machines_file_imports_and_validates(name: str) -> None:
    text = read_trace(name)
    doc = parse_swf_machines(text)
    validate_topology(doc, Registry())
    rows = independent_machine_rows(text)
    assert len(of_kind(doc, ProviderKind.SITE)) == len(rows)
    assert len(of_kind(doc, ProviderKind.HOST)) == sum(int(r[2]) for r in rows)


def test_older_files_give_ram_in_kb() -> None:
    doc = parse_swf_machines(read_trace("alea_wagap-2013.swf.machines"))
    zewura = next(s for s in of_kind(doc, ProviderKind.SITE) if s.name == "zewura")
    assert len(zewura.children) == 20
    assert zewura.children[0].inventories["VCPU"].total == 80
    assert zewura.children[0].inventories["MEMORY_MB"].total == 529426432 // 1024


def test_comments_blank_lines_and_optional_gpu_column() -> None:
    text = "; a comment\n\n# another\n0\tsmall\t3\t4\t1\t8\n1 big 12 16 1 16777216 x 1\n"
    doc = parse_swf_machines(text)
    small, big = of_kind(doc, ProviderKind.SITE)
    assert [h.name for h in small.children] == ["small-1", "small-2", "small-3"]
    assert small.children[0].inventories["MEMORY_MB"].total == 8 * 1024
    assert "GPU_GENERIC" not in small.children[0].inventories
    assert big.children[0].name == "big-01"
    assert big.children[0].inventories["MEMORY_MB"].total == 16384
    assert big.children[0].inventories["GPU_GENERIC"].total == 1


@pytest.mark.parametrize(
    "bad",
    [
        "2\tc\t2\t4\t1",  # too few columns
        "2\tc\tmany\t4\t1\t8",
        "2\tc\t0\t4\t1\t8",
        "2\tc\t2\t0\t1\t8",
        "2\tc\t2\t4\t1\t0",
        "2\tc\t2\t4\t1\t8\tx\t-1",
        "2\tc\t2\t4\t1\t8\tx\t1\textra",
        "x\tc\t2\t4\t1\t8",
        "2\tbad|name\t2\t4\t1\t8",
        "2\tok\t2\t4\t1\t8",  # duplicate cluster name
    ],
)
def test_machines_bad_lines_name_the_line(bad: str) -> None:
    text = "; header comment\n0\tok\t2\t4\t1\t8\n" + bad + "\n"
    with pytest.raises(ValueError, match="line 3"):
        parse_swf_machines(text)
