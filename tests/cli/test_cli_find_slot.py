"""``slotbroker find-slot`` and ``slotbroker calendar`` against a live server loaded with the demo."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cli_server import CliServer, demo_server
from slotbroker.cli import remote
from slotbroker.cli.find_slot import parse_component
from slotbroker.cli.main import app
from slotbroker.cli.output import host_list
from slotbroker.domain.errors import ValidationFailed

runner = CliRunner()
HOUR = 3600


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliServer]:
    with demo_server(tmp_path_factory.mktemp("cli-find-slot")) as server:
        yield server


def invoke(srv: CliServer, *args: str) -> Any:
    return runner.invoke(app, [*args, "--url", srv.url, "--token", srv.user], catch_exceptions=False)


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def next_hour(hours: int = 1) -> int:
    now = int(time.time())
    return now - now % HOUR + hours * HOUR


def test_find_slot_from_flags_as_json(url: CliServer) -> None:
    start = next_hour()
    result = invoke(
        url,
        "find-slot",
        "--component",
        "gpu:1:VCPU=8,MEMORY_MB=32768,GPU_A30=1",
        "--component",
        "workers:2:VCPU=16@STAR",
        "--link",
        "gpu:workers:10",
        "--start",
        iso(start),
        "--end",
        iso(start + 48 * HOUR),
        "--duration",
        "PT4H",
        "--limit",
        "3",
        "--policy",
        "first_fit",
        "-o",
        "json",
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert 1 <= len(body["windows"]) <= 3
    for w in body["windows"]:
        assert w["duration_s"] == 4 * HOUR
        assert start <= datetime.fromisoformat(w["start"].replace("Z", "+00:00")).timestamp()
        assert w["sites"]["workers"] == "STAR"
        assert len(w["placement"]["workers"]) == 2
        assert [(r["a"], r["b"]) for r in w["routes"]] == [("gpu", "workers")]


def test_find_slot_from_a_file_prints_a_table(
    url: CliServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(remote.console, "width", 250)  # no wrapping inside cells
    start = next_hour(2)
    req = {
        "components": [
            {"name": "vm", "resources": {"VCPU": 4}, "site": "TACC"},
            {"name": "edge", "resources": {"VCPU": 2}, "site": "STAR"},
        ],
        "links": [{"a": "vm", "b": "edge", "bandwidth_gbps": 1}],
        "facility_ports": [{"site": "TACC", "port": "Chameleon-TACC", "component": "vm", "vlan_count": 1}],
        "earliest_start": iso(start),
        "latest_end": iso(start + 24 * HOUR),
        "duration": "PT2H",
        "limit": 2,
    }
    for name, text in (("req.yaml", yaml.safe_dump(req)), ("req.json", json.dumps(req))):
        path = tmp_path / name
        path.write_text(text)
        result = invoke(url, "find-slot", "--file", str(path))
        assert result.exit_code == 0, result.output
        out = result.stdout
        assert "2 window(s)" in out
        assert "vm @ TACC" in out
        assert "TACC/Chameleon-TACC -> vm: VLAN [32" in out
        # flags override the file's times
        later = invoke(
            url, "find-slot", "--file", str(path), "--duration", "PT3H", "--limit", "1", "-o", "json"
        )
        assert later.exit_code == 0, later.output
        [window] = json.loads(later.stdout)["windows"]
        assert window["duration_s"] == 3 * HOUR


def test_host_list_counts_instances_sharing_a_host_in_first_seen_order() -> None:
    assert host_list(["b", "a", "b", "b"]) == "b x3, a"
    assert host_list(["a", "b"]) == "a, b"
    assert host_list([]) == ""


def test_the_table_counts_instances_on_one_host_and_json_keeps_each(
    url: CliServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(remote.console, "width", 250)
    start = next_hour()
    args = ["find-slot", "-c", "w:3:VCPU=1@STAR", "--start", iso(start), "--duration", "PT1H", "--limit", "1"]
    as_json = invoke(url, *args, "--policy", "first_fit", "-o", "json")
    assert as_json.exit_code == 0, as_json.output
    [window] = json.loads(as_json.stdout)["windows"]
    hosts = window["placement"]["w"]
    assert len(hosts) == 3
    assert len(set(hosts)) < 3  # first fit packs one-core instances together
    table = invoke(url, *args, "--policy", "first_fit")
    assert table.exit_code == 0, table.output
    assert f"w @ STAR: {host_list(hosts)}" in table.stdout


def test_nothing_fits_exits_1_with_the_blockers(url: CliServer) -> None:
    start = next_hour()
    args = ["find-slot", "-c", "huge:1:VCPU=8,GPU_A30=9", "--start", iso(start), "--duration", "PT1H"]
    result = invoke(url, *args)
    assert result.exit_code == 1
    assert "nothing fits" in result.output
    assert "huge" in result.output
    as_json = invoke(url, *args, "-o", "json")
    assert as_json.exit_code == 1
    body = json.loads(as_json.stdout)
    assert body["windows"] == []
    assert body["explanation"]["blockers"][0]["component"] == "huge"


def test_no_explain_leaves_the_empty_answer_unexplained(url: CliServer) -> None:
    start = next_hour()
    args = ["find-slot", "-c", "huge:1:VCPU=8,GPU_A30=9", "--start", iso(start), "--duration", "PT1H"]
    quiet = invoke(url, *args, "--no-explain", "-o", "json")
    assert quiet.exit_code == 1
    assert json.loads(quiet.stdout)["explanation"] is None
    assert "nothing fits" in invoke(url, *args, "--no-explain").output


def test_bad_requests_exit_2_naming_the_field(url: CliServer, tmp_path: Path) -> None:
    start = next_hour()
    bad = invoke(url, "find-slot", "-c", "vm:1:VCPU=1@ATLANTIS", "--start", iso(start), "--duration", "PT1H")
    assert bad.exit_code == 2
    assert "/components/0/site" in bad.output
    zero = invoke(url, "find-slot", "-c", "vm:1:VCPU=1", "--duration", "PT0S")
    assert zero.exit_code == 2
    assert "/duration" in zero.output
    garbled = invoke(url, "find-slot", "-c", "vm-without-count")
    assert garbled.exit_code == 2
    assert "--component[0]" in garbled.output
    nothing = invoke(url, "find-slot", "--duration", "PT1H")
    assert nothing.exit_code == 2
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    assert invoke(url, "find-slot", "--file", str(listed)).exit_code == 2


def test_parse_component() -> None:
    assert parse_component("gpu:2:VCPU=8,MEMORY_MB=32768,GPU_A30=1@STAR", 0) == {
        "name": "gpu",
        "count": 2,
        "resources": {"VCPU": 8, "MEMORY_MB": 32768, "GPU_A30": 1},
        "site": "STAR",
    }
    assert parse_component("anchor:1:@TACC", 0) == {
        "name": "anchor",
        "count": 1,
        "resources": {},
        "site": "TACC",
    }
    for bad in ("gpu:x:VCPU=1", "gpu:1:VCPU", "gpu:1:VCPU=many", "gpu:VCPU=1"):
        with pytest.raises(ValidationFailed):
            parse_component(bad, 3)


def test_calendar_is_a_heat_map_of_one_class_by_site(url: CliServer) -> None:
    t = next_hour(3)
    args = ["calendar", "--class", "GPU_A30", "--start", iso(t), "--end", iso(t + 6 * HOUR)]
    body = json.loads(invoke(url, *args, "-o", "json").stdout)
    assert body["rows"]
    assert {(r["kind"], r["resource_class"]) for r in body["rows"]} == {("site", "GPU_A30")}
    assert all(len(r["free"]) == 6 and max(r["free"]) <= r["capacity"] for r in body["rows"])
    table = invoke(url, *args, "--tz", "UTC")
    assert table.exit_code == 0, table.output
    assert f"free GPU_A30 from {datetime.fromtimestamp(t, UTC):%Y-%m-%d %H:%M} +00:00" in table.stdout
    stocked = [r["name"] for r in body["rows"] if r["capacity"] > 0]
    empty = [r["name"] for r in body["rows"] if r["capacity"] == 0]
    assert stocked
    assert all(f"\n{name} " in table.stdout for name in stocked)
    assert not any(f"\n{name} " in table.stdout for name in empty)  # sites without the class: no row


def test_calendar_rejects_bad_input(url: CliServer) -> None:
    t = next_hour()
    assert invoke(url, "calendar", "--start", "soon").exit_code == 2
    assert invoke(url, "calendar", "--start", iso(t + HOUR), "--end", iso(t)).exit_code == 2
    assert invoke(url, "calendar", "--start", iso(t), "--end", "+900d", "--by", "hour").exit_code == 2
