"""``slotbroker find-slot`` and ``slotbroker calendar`` on a SQLite file loaded by ``slotbroker demo``."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from slotbroker.cli import common
from slotbroker.cli.find_slot import parse_component
from slotbroker.cli.main import app
from slotbroker.demo.bookings import BookedAmount, Booking
from slotbroker.domain.errors import ValidationFailed
from slotbroker.services.inventory.demo_data import load_bookings
from slotbroker.store.db import Database

runner = CliRunner()
HOUR = 3600


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    db_url = f"sqlite:///{tmp_path_factory.mktemp('cli-find-slot')}/demo.db"
    result = runner.invoke(app, ["demo", "--load-only", "--days", "2", "--database-url", db_url])
    assert result.exit_code == 0, result.output
    return db_url


def invoke(url: str, *args: str) -> Any:
    return runner.invoke(app, [*args, "--database-url", url], catch_exceptions=False)


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def next_hour(hours: int = 1) -> int:
    now = int(time.time())
    return now - now % HOUR + hours * HOUR


def test_find_slot_from_flags_as_json(url: str) -> None:
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
        "--json",
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
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(common.console, "width", 250)  # no wrapping inside cells
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
        later = invoke(url, "find-slot", "--file", str(path), "--duration", "PT3H", "--limit", "1", "--json")
        assert later.exit_code == 0, later.output
        [window] = json.loads(later.stdout)["windows"]
        assert window["duration_s"] == 3 * HOUR


def test_nothing_fits_exits_1_with_the_blockers(url: str) -> None:
    start = next_hour()
    args = ["find-slot", "-c", "huge:1:VCPU=8,GPU_A30=9", "--start", iso(start), "--duration", "PT1H"]
    result = invoke(url, *args)
    assert result.exit_code == 1
    assert "nothing fits" in result.output
    assert "huge" in result.output
    as_json = invoke(url, *args, "--json")
    assert as_json.exit_code == 1
    body = json.loads(as_json.stdout)
    assert body["windows"] == []
    assert body["explanation"]["blockers"][0]["component"] == "huge"


def test_bad_requests_exit_2_naming_the_field(url: str, tmp_path: Path) -> None:
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


def test_calendar_shows_peak_usage(url: str) -> None:
    t = next_hour(3)
    db = Database(url)
    back_to_back = [
        Booking("cli-a", "p", t, t + 1800, (BookedAmount("mass-w1", "VCPU", 3),)),
        Booking("cli-b", "p", t + 1800, t + HOUR, (BookedAmount("mass-w1", "VCPU", 3),)),
    ]
    load_bookings(db, back_to_back, now_s=int(time.time()))
    db.dispose()
    args = ["calendar", "--start", iso(t), "--end", iso(t + 2 * HOUR), "--resolution", "hour"]
    args += ["--kind", "host", "--name", "mass-w1", "--resource-class", "VCPU"]
    result = invoke(url, *args, "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    [row] = body["rows"]
    assert row["used"] == [3, 0]
    assert row["free"] == [125, 128]
    table = invoke(url, *args)
    assert table.exit_code == 0, table.output
    assert "3/128" in table.stdout
    assert "mass-w1" in table.stdout
    site_rows = invoke(
        url, "calendar", "--start", iso(t), "--end", iso(t + 86400), "--kind", "site", "--json"
    )
    assert {r["kind"] for r in json.loads(site_rows.stdout)["rows"]} == {"site"}


def test_calendar_rejects_bad_input(url: str) -> None:
    t = next_hour()
    assert invoke(url, "calendar", "--start", "soon", "--end", iso(t)).exit_code == 2
    assert invoke(url, "calendar", "--start", iso(t + HOUR), "--end", iso(t)).exit_code == 2
    assert (
        invoke(url, "calendar", "--start", iso(t), "--end", iso(t + HOUR), "--resolution", "month").exit_code
        == 2
    )
