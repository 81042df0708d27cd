"""The operator CLI (``slotbroker admin``) end to end on a real SQLite file: db, token, topology,
importers, demo; and ``providers`` through a server on the same file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from live_server import make_app, serve, token
from slotbroker.cli.main import app
from slotbroker.services.access.tokens import Role, TokenService
from slotbroker.store import migrate
from slotbroker.store.db import Database
from slotbroker.store.unit_of_work import UnitOfWork

TRACES = Path(__file__).resolve().parents[2].parent / "shared" / "traces"

runner = CliRunner()


@pytest.fixture
def url(tmp_path: Path) -> str:
    db_url = f"sqlite:///{tmp_path}/cli.db"
    run("admin", "db", "upgrade", "--create", "--database-url", db_url)
    return db_url


def run(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_db_upgrade_current_downgrade(url: str) -> None:
    head = migrate.head_revision()
    assert f"database at {head}" in run("admin", "db", "upgrade", "--database-url", url)
    assert f"current {head}, head {head}" in run("admin", "db", "current", "--database-url", url)
    as_json = json.loads(run("admin", "db", "current", "-o", "json", "--database-url", url))
    assert as_json == {"current": head, "head": head}
    assert "database at 0001" in run("admin", "db", "downgrade", "0001", "--database-url", url)
    assert "database at None" in run("admin", "db", "downgrade", "base", "--database-url", url)


def test_token_create_authenticates(url: str) -> None:
    out = json.loads(
        run(
            "admin",
            "token",
            "create",
            "--project",
            "p1",
            "--role",
            "operator",
            "-o",
            "json",
            "--database-url",
            url,
        )
    )
    assert out["token"].startswith("sb_")
    principal = TokenService(Database(url)).authenticate(out["token"])
    bare = run("admin", "token", "create", "--project", "p1", "--database-url", url)
    assert bare.startswith("sb_")  # the default: the bare token, for TOKEN=$(...)
    assert bare.strip() == bare.split()[0]
    assert (principal.project, principal.role.value) == ("p1", "operator")


def test_token_create_rejects_unknown_role(url: str) -> None:
    result = runner.invoke(
        app, ["admin", "token", "create", "--project", "p", "--role", "root", "--database-url", url]
    )
    assert result.exit_code == 2
    assert "root" in result.output


def test_topology_import_export_roundtrip(url: str, tmp_path: Path) -> None:
    doc = tmp_path / "t.yaml"
    doc.write_text(
        yaml.safe_dump(
            {
                "resource_classes": [{"name": "CUSTOM_WIDGET", "description": "widgets"}],
                "providers": [
                    {
                        "name": "east",
                        "kind": "region",
                        "children": [
                            {
                                "name": "S1",
                                "kind": "site",
                                "location": {"lat": 40.0, "lon": -75.0},
                                "children": [
                                    {
                                        "name": "s1-w1",
                                        "kind": "host",
                                        "traits": ["STORAGE_DISK_NVME"],
                                        "inventories": {
                                            "VCPU": 64,
                                            "CUSTOM_WIDGET": 2,
                                            "MEMORY_MB": {"total": 1024, "reserved": 24},
                                        },
                                    },
                                ],
                            },
                            {"name": "S2", "kind": "site"},
                        ],
                    }
                ],
                "links": [
                    {"name": "S1-S2", "endpoints": ["S1", "S2"], "bandwidth_gbps": 100, "latency_ms": 3}
                ],
                "facility_ports": [
                    {"name": "P1", "site": "S1", "vlans": "300-350,100-200", "bandwidth_gbps": 10}
                ],
            }
        )
    )
    first = json.loads(run("admin", "topology", "import", str(doc), "-o", "json", "--database-url", url))
    assert first["created"] == 6
    exported = tmp_path / "export.yaml"
    run("admin", "topology", "export", "--file", str(exported), "--database-url", url)
    data = yaml.safe_load(exported.read_text())
    assert json.loads(run("admin", "topology", "export", "-o", "json", "--database-url", url)) == data
    host = data["providers"][0]["children"][0]["children"][0]
    assert host["inventories"]["VCPU"] == 64  # compact form when only the total is set
    assert host["inventories"]["MEMORY_MB"]["reserved"] == 24
    assert data["facility_ports"][0]["vlans"] == "100-200,300-350"
    again = json.loads(run("admin", "topology", "import", str(exported), "-o", "json", "--database-url", url))
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 6)
    assert again["calendar_generation"] == first["calendar_generation"]


def test_topology_import_reports_pointers_and_writes_nothing(url: str, tmp_path: Path) -> None:
    doc = tmp_path / "bad.yaml"
    doc.write_text(
        yaml.safe_dump(
            {
                "providers": [
                    {
                        "name": "r",
                        "kind": "region",
                        "children": [{"name": "h", "kind": "host", "inventories": {"VCPUS": 1}}],
                    }
                ]
            }
        )
    )
    result = runner.invoke(app, ["admin", "topology", "import", str(doc), "--database-url", url])
    assert result.exit_code == 2
    assert "/providers/0/children/0/kind" in result.output
    assert "/providers/0/children/0/inventories/VCPUS" in result.output
    with UnitOfWork(Database(url), readonly=True) as uow:
        assert uow.providers.find() == []


def test_providers_list_table_and_filters(url: str, tmp_path: Path) -> None:
    doc = tmp_path / "t.json"
    doc.write_text(
        json.dumps(
            {
                "providers": [
                    {
                        "name": "S",
                        "kind": "site",
                        "children": [
                            {
                                "name": "gpu1",
                                "kind": "host",
                                "inventories": {"GPU_A30": 2},
                                "traits": ["HW_GPU_CUDA"],
                            },
                            {"name": "cpu1", "kind": "host", "inventories": {"VCPU": 8}},
                        ],
                    }
                ]
            }
        )
    )
    run("admin", "topology", "import", str(doc), "--database-url", url)
    api = make_app(Path(url.removeprefix("sqlite:///")))
    with serve(api) as server:
        remote = ("--url", server, "--token", token(api, Role.USER))
        table = run("providers", "--kind", "host", *remote)
        assert "gpu1" in table
        assert "GPU_A30=2" in table
        gpus = json.loads(run("providers", "--trait", "HW_GPU_CUDA", "--kind", "host", "-o", "json", *remote))
    assert [p["name"] for p in gpus] == ["gpu1"]


def test_operator_commands_refuse_a_missing_database(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path}/typo/nothing.db"
    for args in (["db", "current"], ["token", "create", "--project", "p"], ["topology", "export"]):
        result = runner.invoke(app, ["admin", *args, "--database-url", missing])
        assert result.exit_code == 2, (args, result.output)
        assert "--create" in result.output
    assert not (tmp_path / "typo").exists()


def _trace(name: str) -> Path:
    path = TRACES / name
    if not path.exists():
        pytest.skip(f"trace file {path} is absent (shared/traces not checked out beside the repo)")
    return path


def test_import_alibaba_real_file(url: str) -> None:
    report = json.loads(
        run(
            "admin",
            "topology",
            "import-alibaba",
            str(_trace("alibaba_openb_node_list_all_node.csv")),
            "-o",
            "json",
            "--database-url",
            url,
        )
    )
    assert report["created"] == 1 + 1 + 1523
    with UnitOfWork(Database(url), readonly=True) as uow:
        hosts = uow.providers.find(kinds=["host"])
    assert len(hosts) == 1523


def test_import_machines_real_file(url: str) -> None:
    report = json.loads(
        run(
            "admin",
            "topology",
            "import-machines",
            str(_trace("aleang_NGI_CZ.swf.machines")),
            "--region",
            "metacentrum",
            "-o",
            "json",
            "--database-url",
            url,
        )
    )
    assert report["created"] == 1 + 47 + 799
    again = json.loads(
        run(
            "admin",
            "topology",
            "import-machines",
            str(_trace("aleang_NGI_CZ.swf.machines")),
            "--region",
            "metacentrum",
            "-o",
            "json",
            "--database-url",
            url,
        )
    )
    assert again["unchanged"] == 1 + 47 + 799


def test_demo_load_only(url: str) -> None:
    out = run("demo", "--load-only", "--days", "3", "--database-url", url)
    assert "admin token: sb_" in out
    db = Database(url)
    with UnitOfWork(db, readonly=True) as uow:
        assert uow.allocations.lease_count() > 100
        assert uow.allocations.overbooked() == []
        sites = uow.providers.find(kinds=["site"])
    assert len(sites) >= 30
    # A second run keeps the data and only issues a new token.
    out2 = run("demo", "--load-only", "--days", "3", "--database-url", url)
    assert "0 leases loaded" in out2
