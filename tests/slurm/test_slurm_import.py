"""The Slurm topology importer: on captured ``scontrol -o`` text (GRES, features, partitions, odd values)
and end to end against the test cluster through ``slotbroker topology import-slurm``."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from slotbroker.cli.main import app
from slotbroker.domain.providers import ProviderKind
from slotbroker.domain.topology import ProviderNode, Topology
from slotbroker.importers.slurm import feature_trait, gpu_classes, parse_slurm
from slotbroker.services.inventory.topology import TopologyService
from slotbroker.store import migrate
from slotbroker.store.db import Database
from slurm_cluster import CPUS, MEMORY_MB, NODES, SlurmCluster

# Captured from Slurm 22.05 (the test cluster), with GPUs and a drained node written in.
NODES_TEXT = """\
NodeName=g1 Arch=x86_64 CoresPerSocket=8  CPUAlloc=0 CPUEfctv=32 CPUTot=32 CPULoad=0.01 \
AvailableFeatures=fast,ib-hdr ActiveFeatures=fast,ib-hdr Gres=gpu:a100:4(S:0-1),gpu:2,mps:100 \
NodeAddr=10.0.0.1 NodeHostName=g1 Version=22.05.8 OS=Linux 6.1.0 #1 SMP PREEMPT_DYNAMIC \
RealMemory=256000 AllocMem=0 FreeMem=250000 Sockets=2 Boards=1 State=IDLE ThreadsPerCore=2 \
Partitions=gpu,debug BootTime=2026-12-06T15:37:59 CfgTRES=cpu=32,mem=250G,billing=32,gres/gpu=6
NodeName=c1 Arch=x86_64 CoresPerSocket=1  CPUAlloc=0 CPUEfctv=2 CPUTot=2 CPULoad=1.16 \
AvailableFeatures=(null) ActiveFeatures=(null) Gres=(null) NodeAddr=127.0.0.1 RealMemory=1000 \
State=IDLE+DRAIN Reason=disk failing [root@2026-12-06T15:43:11] Partitions=debug,retired
"""
PARTITIONS_TEXT = """\
PartitionName=debug AllowGroups=ALL Default=YES Nodes=g1,c1 State=UP TotalCPUs=34 TotalNodes=2
PartitionName=gpu AllowGroups=ALL Default=NO Nodes=g1 State=UP TotalCPUs=32 TotalNodes=1
"""


def hosts(doc: Topology) -> dict[str, ProviderNode]:
    return {node.name: node for node, _parent, _at in doc.walk() if node.kind == ProviderKind.HOST}


def test_captured_text_becomes_hosts_with_cpus_memory_gpus_traits_and_aggregates() -> None:
    doc = parse_slurm(NODES_TEXT, PARTITIONS_TEXT, site="hpc", host_prefix="hpc-")
    found = hosts(doc)
    assert sorted(found) == ["hpc-c1", "hpc-g1"]
    g1 = found["hpc-g1"]
    assert {rc: inv.total for rc, inv in g1.inventories.items()} == {
        "VCPU": 32,
        "MEMORY_MB": 256000,
        "GPU_A100": 4,
        "GPU_GENERIC": 2,
    }
    assert g1.traits == ["CUSTOM_SLURM_FAST", "CUSTOM_SLURM_IB_HDR"]
    assert g1.aggregates == ["hpc:gpu", "hpc:debug"]
    c1 = found["hpc-c1"]
    assert {rc: inv.total for rc, inv in c1.inventories.items()} == {"VCPU": 2, "MEMORY_MB": 1000}
    assert c1.aggregates == ["hpc:debug"]  # "retired" is not a partition any more
    assert c1.traits == []
    assert doc.traits == ["CUSTOM_SLURM_FAST", "CUSTOM_SLURM_IB_HDR"]
    assert [p.name for p in doc.providers] == ["slurm"]
    assert [s.name for s in doc.providers[0].children] == ["hpc"]


def test_without_partitions_output_every_listed_partition_counts() -> None:
    assert hosts(parse_slurm(NODES_TEXT))["c1"].aggregates == ["slurm:debug", "slurm:retired"]


def test_gres_and_feature_rules() -> None:
    assert gpu_classes("gpu:a100:4(S:0,1),gpu:tesla-v100:1") == {"GPU_A100": 4, "GPU_TESLA_V100": 1}
    assert gpu_classes("gpu:0") == {}
    assert gpu_classes("(null)") == {}
    assert gpu_classes("shard:8") == {}
    assert feature_trait("ib-hdr") == "CUSTOM_SLURM_IB_HDR"
    assert feature_trait("x86.v4") == "CUSTOM_SLURM_X86_V4"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("No nodes in the system\n", "no node records"),
        ("NodeName=a CPUTot=two\n", "not a whole number"),
        ("NodeName=a\nNodeName=a\n", "unused provider name"),
    ],
)
def test_bad_text_is_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_slurm(text)


def test_the_document_imports_and_imports_again_unchanged(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/x.db")
    migrate.upgrade(db.engine)
    svc = TopologyService(db)
    doc = parse_slurm(NODES_TEXT, PARTITIONS_TEXT, site="hpc", host_prefix="hpc-")
    first = svc.import_(doc)
    again = svc.import_(doc)
    assert first.created == 4  # region, site, two hosts
    assert (again.created, again.updated) == (0, 0)
    db.dispose()


@pytest.mark.slurm
def test_import_slurm_reads_the_running_cluster(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    runner = CliRunner()
    printed = runner.invoke(
        app, ["admin", "topology", "import-slurm", "--slurm-conf", str(slurm_cluster.conf)]
    )
    assert printed.exit_code == 0, printed.output
    doc = Topology.model_validate(yaml.safe_load(printed.output))
    found = hosts(doc)
    assert sorted(found) == list(NODES)
    for node in NODES:
        host = found[node]
        totals = {rc: inv.total for rc, inv in host.inventories.items()}
        assert totals == {"VCPU": CPUS, "MEMORY_MB": MEMORY_MB}
        assert host.traits == ["CUSTOM_SLURM_FAST", f"CUSTOM_SLURM_{node.upper()}SIDE"]
        assert host.aggregates == ["sbtest:debug"]
    assert doc.providers[0].children[0].name == "sbtest"  # the ClusterName

    url = f"sqlite:///{tmp_path}/cli.db"
    args = ["admin", "topology", "import-slurm", "--slurm-conf", str(slurm_cluster.conf), "--apply"]
    args += ["--database-url", url, "--create"]
    applied = runner.invoke(app, args)
    assert applied.exit_code == 0, applied.output
    assert "created 5" in applied.output
    exported = TopologyService(Database(url)).export()
    assert sorted(hosts(exported)) == list(NODES)


def test_import_slurm_reads_saved_output(tmp_path: Path) -> None:
    nodes, partitions = tmp_path / "nodes.txt", tmp_path / "parts.txt"
    nodes.write_text(NODES_TEXT)
    partitions.write_text(PARTITIONS_TEXT)
    args = [
        "admin",
        "topology",
        "import-slurm",
        "--nodes-file",
        str(nodes),
        "--partitions-file",
        str(partitions),
    ]
    out = CliRunner().invoke(app, [*args, "--host-prefix", "hpc-", "--format", "json"])
    assert out.exit_code == 0, out.output
    assert sorted(hosts(Topology.model_validate_json(out.output))) == ["hpc-c1", "hpc-g1"]
