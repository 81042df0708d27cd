"""The Slurm provisioner's pure rules, without daemons: reading ``scontrol -o`` text, state and exit-code
mapping, names, configuration, the host -> node rule, and what a workload may put into a batch job."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from planner_support import make_lease, make_planner
from slotbroker.domain.errors import NotFound, ValidationFailed
from slotbroker.domain.jobs import JobSpec, Workload
from slotbroker.domain.slurm_text import (
    format_time,
    job_name,
    lease_of,
    parse_record,
    parse_records,
    parse_time,
    reservation_name,
    split_list,
)
from slotbroker.services.access.tokens import Role
from slotbroker.services.planner.provisioners.base import (
    Allocation,
    AllocationItem,
    Provision,
    ProvisionerContext,
    ProvisionerError,
    RunPhase,
)
from slotbroker.services.planner.provisioners.slurm import (
    SlurmProvisioner,
    exit_code,
    make_provisioner,
    map_state,
)
from slotbroker.services.planner.provisioners.slurm_config import SlurmConfig, nodes_of
from slotbroker.store import migrate
from slotbroker.store.db import Database

NODE_LINE = (
    "NodeName=n1 Arch=x86_64 CoresPerSocket=1  CPUAlloc=0 CPUEfctv=2 CPUTot=2 CPULoad=1.16 "
    "AvailableFeatures=fast,n1side ActiveFeatures=fast,n1side Gres=(null) NodeAddr=127.0.0.1 "
    "OS=Linux 6.18.44-fc-v1147 #1 SMP PREEMPT_DYNAMIC @0  RealMemory=1000 State=IDLE+DRAIN "
    "Reason=disk failing [root@2026-12-06T15:43:11] AllocNode:Sid=localhost:7940 CPUs/Task=1"
)


def test_a_record_keeps_values_with_blanks_and_odd_keys() -> None:
    rec = parse_record(NODE_LINE)
    assert rec["NodeName"] == "n1"
    assert rec["OS"] == "Linux 6.18.44-fc-v1147 #1 SMP PREEMPT_DYNAMIC @0"
    assert rec["Reason"] == "disk failing [root@2026-12-06T15:43:11]"
    assert rec["AllocNode:Sid"] == "localhost:7940"
    assert rec["CPUs/Task"] == "1"
    assert rec["Gres"] == "(null)"
    assert split_list(rec["AvailableFeatures"]) == ["fast", "n1side"]
    assert split_list(rec["Gres"]) == []


def test_records_skip_banners_and_blank_lines() -> None:
    text = f"No reservations in the system\n\n{NODE_LINE}\n"
    assert [r["NodeName"] for r in parse_records(text, "NodeName")] == ["n1"]


def test_times_round_trip_in_local_time() -> None:
    now = int(time.time())
    assert parse_time(format_time(now)) == now
    assert parse_time("Unknown") is None
    assert parse_time("") is None


def test_names_come_from_ids_and_back() -> None:
    lease = "e952d7b5-8a92-4590-8d79-8bcd89768889"
    assert reservation_name(lease) == f"sb-{lease}"
    assert lease_of(f"sb-{lease}") == lease
    assert lease_of("maintenance") is None
    with pytest.raises(ValueError, match="cannot name"):
        reservation_name("a b; rm -rf /")
    assert job_name("any key; with $(shell)") == job_name("any key; with $(shell)")
    assert job_name("a") != job_name("b")
    assert job_name("x" * 500).startswith("sb-")
    assert len(job_name("x" * 500)) == 27


@pytest.mark.parametrize(
    ("state", "phase"),
    [
        ("PENDING", RunPhase.QUEUED),
        ("REQUEUED", RunPhase.QUEUED),
        ("RUNNING", RunPhase.RUNNING),
        ("CONFIGURING", RunPhase.RUNNING),
        ("COMPLETING", RunPhase.RUNNING),
        ("COMPLETED", RunPhase.SUCCEEDED),
        ("FAILED", RunPhase.FAILED),
        ("TIMEOUT", RunPhase.FAILED),
        ("NODE_FAIL", RunPhase.FAILED),
        ("OUT_OF_MEMORY", RunPhase.FAILED),
        ("CANCELLED", RunPhase.CANCELED),
        ("CANCELLED+", RunPhase.CANCELED),
    ],
)
def test_slurm_states_map_onto_the_planners(state: str, phase: RunPhase) -> None:
    assert map_state(state) is phase


def test_exit_codes_and_signals() -> None:
    assert exit_code("0:0") == (0, "")
    assert exit_code("3:0") == (3, "")
    assert exit_code("0:9") == (137, "signal 9")
    assert exit_code("(null)") == (None, "")
    assert exit_code("x:y") == (None, "")


def test_config_from_env_and_its_refusals(tmp_path: Path) -> None:
    env = {
        "SLOTBROKER_SLURM_CONF": "/etc/slurm/other.conf",
        "SLOTBROKER_SLURM_HOST_PREFIX": "hpc-",
        "SLOTBROKER_SLURM_NODES": '{"gpu-box": "g01"}',
        "SLOTBROKER_SLURM_SPOOL": str(tmp_path),
        "SLOTBROKER_SLURM_USERS": "broker",
        "SLOTBROKER_SLURM_PARTITION": "batch",
        "SLOTBROKER_SLURM_SYNC_S": "15",
    }
    config = SlurmConfig.from_env(env)
    assert (config.conf, config.host_prefix, config.spool, config.users) == (
        "/etc/slurm/other.conf",
        "hpc-",
        str(tmp_path),
        "broker",
    )
    assert config.sync_s == 15.0
    assert SlurmConfig().sync_s == 60.0
    with pytest.raises(ValueError, match="SYNC_S"):
        SlurmConfig.from_env({"SLOTBROKER_SLURM_SYNC_S": "often"})
    assert config.node_of("hpc-n7") == "n7"
    assert config.node_of("gpu-box") == "g01"
    assert config.node_of("cern-w2") is None
    assert config.node_of("hpc-bad name") is None
    with pytest.raises(ValueError, match="NODES"):
        SlurmConfig.from_env({"SLOTBROKER_SLURM_NODES": '{"a": "b;c"}'})
    with pytest.raises(ValueError, match="USERS"):
        SlurmConfig(users="root users=evil")
    with pytest.raises(ValueError, match="SPOOL"):
        SlurmConfig(spool="relative/dir")


def allocation(*hosts: str, items: tuple[AllocationItem, ...] = ()) -> Allocation:
    its = items or tuple(AllocationItem(h, "VCPU", 1) for h in hosts)
    return Allocation("e952d7b5-8a92-4590-8d79-8bcd89768889", "alpha", 0, 60, its, hosts=hosts)


def test_only_the_leases_hosts_of_this_cluster_become_nodes() -> None:
    config = SlurmConfig(host_prefix="hpc-")
    link = AllocationItem("hpc-uplink", "BANDWIDTH_MBPS", 10)
    items = (AllocationItem("hpc-n1", "VCPU", 1), AllocationItem("cern-w2", "VCPU", 1), link)
    assert nodes_of(config, allocation("hpc-n1", "cern-w2", items=items)) == ["n1"]
    assert nodes_of(config, allocation("hpc-n2", "hpc-n1", "hpc-n2")) == ["n2", "n1"]


def slurm(tmp_path: Path) -> SlurmProvisioner:
    return SlurmProvisioner(SlurmConfig(spool=str(tmp_path)))


def test_a_command_is_exec_with_every_word_quoted(tmp_path: Path) -> None:
    script = slurm(tmp_path)._script(Workload(command=("echo", "a b", "$(id)", "it's")))
    assert script == "#!/bin/sh\nexec echo 'a b' '$(id)' 'it'\"'\"'s'\n"
    own = slurm(tmp_path)._script(Workload(extra={"script": "echo hi\n"}))
    assert own == "#!/bin/sh\necho hi\n"
    with pytest.raises(ProvisionerError, match=r"needs workload\.command"):
        slurm(tmp_path)._script(Workload())
    with pytest.raises(ProvisionerError, match="non-empty string"):
        slurm(tmp_path)._script(Workload(extra={"script": 42}))


def test_node_count_defaults_to_every_node_and_is_checked(tmp_path: Path) -> None:
    prov = Provision("sb-x", allocation("n1", "n2"))
    s = slurm(tmp_path)
    assert s._node_count(Workload(command=("true",)), prov) == 2
    assert s._node_count(Workload(command=("true",), extra={"nodes": 1}), prov) == 1
    for bad in (0, -1, True, "2", 2.5):
        with pytest.raises(ProvisionerError, match="positive integer"):
            s._node_count(Workload(command=("true",), extra={"nodes": bad}), prov)


@pytest.mark.parametrize("name", ["SLURM_CONF", "SBATCH_RESERVATION", "SALLOC_PARTITION", "BAD NAME", "1X"])
def test_environment_that_would_steer_sbatch_is_refused(tmp_path: Path, name: str) -> None:
    prov = Provision("sb-x", allocation("n1"))
    with pytest.raises(ProvisionerError, match="not allowed"):
        slurm(tmp_path)._environment(Workload(command=("true",), env={name: "x"}), prov, "job-1")


def test_the_job_environment_carries_the_ids(tmp_path: Path) -> None:
    prov = Provision("sb-x", allocation("n1"))
    env = slurm(tmp_path)._environment(Workload(command=("true",), env={"MODE": "fast"}), prov, "job-1")
    lease = prov.allocation.lease_id
    assert env == {"MODE": "fast", "SLOTBROKER_JOB_ID": "job-1", "SLOTBROKER_LEASE_ID": lease}


def test_the_tools_get_no_secret_from_this_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLOTBROKER_DATABASE_URL", "postgresql://user:secret@db/x")
    s = SlurmProvisioner(SlurmConfig(conf="/x/slurm.conf", spool=str(tmp_path)))
    assert s.slurm.env.keys() <= {"PATH", "LANG", "TZ", "SLURM_CONF"}
    assert s.slurm.env["SLURM_CONF"] == "/x/slurm.conf"


def test_factory_and_role(tmp_path: Path) -> None:
    prov = make_provisioner(ProvisionerContext(options={"spool": str(tmp_path), "host_prefix": "hpc-"}))
    assert prov.config.host_prefix == "hpc-"
    assert prov.min_role is Role.OPERATOR
    assert prov.follows_lease


def test_unknown_ids_answer_unknown_without_calling_slurm(tmp_path: Path) -> None:
    """Ids that are not ours never reach a command line (the adapter has no binaries to find here)."""
    s = SlurmProvisioner(SlurmConfig(spool=str(tmp_path), bin_dir="/nonexistent"))
    assert asyncio.run(s.run_status("12; rm -rf /")).phase is RunPhase.UNKNOWN
    assert asyncio.run(s.status("not a name")).phase.value == "unknown"
    asyncio.run(s.cancel("$(id)"))
    asyncio.run(s.release("a b"))


def test_the_slurm_entry_point_is_declared() -> None:
    """What ``load("slurm")`` finds once the package is installed from this pyproject (CI reinstalls)."""
    import tomllib

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    group = tomllib.loads(pyproject.read_text())["project"]["entry-points"]["slotbroker.provisioners"]
    assert group["slurm"] == "slotbroker.services.planner.provisioners.slurm:make_provisioner"


def test_workload_problems_name_the_field(tmp_path: Path) -> None:
    s = slurm(tmp_path)
    assert s.workload_problems(Workload(command=("true",), env={"MODE": "x"}, extra={"nodes": 2})) == []
    assert s.workload_problems(Workload(extra={"script": "echo hi"})) == []
    bad = Workload(env={"SBATCH_RESERVATION": "other", "a/b": "x"}, extra={"nodes": 0})
    assert [p.pointer for p in s.workload_problems(bad)] == [
        "/workload/command",
        "/workload/extra/nodes",
        "/workload/env/SBATCH_RESERVATION",
        "/workload/env/a~1b",
    ]


def test_a_job_slurm_could_never_run_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """A 422-style refusal naming the field, not a job that fails its attempts (and moves its lease)."""
    db = Database(f"sqlite:///{tmp_path}/x.db")
    migrate.upgrade(db.engine)
    planner = make_planner(db, {"slurm": slurm(tmp_path)})
    lease = make_lease(db)
    bad = JobSpec(lease, "slurm", Workload(command=("true",), extra={"nodes": "all"}), job_id="j-bad")
    with pytest.raises(ValidationFailed) as refused:
        planner.create(bad)
    assert [e.pointer for e in refused.value.errors] == ["/workload/extra/nodes"]
    with pytest.raises(NotFound):
        planner.get("j-bad")
    db.dispose()
