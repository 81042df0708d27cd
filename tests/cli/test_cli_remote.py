"""The CLI as a researcher uses it from a laptop: against a live server, from an empty directory.

Proof for issue 14: ``find-slot`` with only SLOTBROKER_URL and SLOTBROKER_TOKEN set answers windows and
creates no files; profiles; every time form; every output format; ``--help`` verbatim at 80 columns.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from cli_server import CliServer, demo_server
from slotbroker.cli.main import app

SRC = Path(__file__).resolve().parents[2] / "src"
runner = CliRunner()
GPU = "gpu:1:VCPU=8,MEMORY_MB=32768,GPU_A30=1"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliServer]:
    with demo_server(tmp_path_factory.mktemp("cli-remote")) as server:
        yield server


@pytest.fixture(autouse=True)
def no_profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test starts without a config file or server variables of the machine running it."""
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    for name in ("SLOTBROKER_URL", "SLOTBROKER_TOKEN", "SLOTBROKER_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return home


def cli(srv: CliServer, *args: str, token: str | None = None) -> Any:
    """Run a command against ``srv``; the server options go before a ``--`` (after it, all is COMMAND)."""
    cut = args.index("--") if "--" in args else len(args)
    return runner.invoke(app, [*args[:cut], "--url", srv.url, "--token", token or srv.user, *args[cut:]])


def ok(srv: CliServer, *args: str, token: str | None = None) -> str:
    result = cli(srv, *args, token=token)
    assert result.exit_code == 0, result.output
    return str(result.stdout)


def test_find_slot_from_an_empty_directory_with_only_the_environment(srv: CliServer, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(empty),
        "PYTHONPATH": str(SRC),
        "SLOTBROKER_URL": srv.url,
        "SLOTBROKER_TOKEN": srv.user,
    }
    args = ["find-slot", "-c", GPU, "--start", "now", "--duration", "8h", "-o", "json"]
    out = subprocess.run(
        [sys.executable, "-m", "slotbroker.cli.main", *args],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["windows"]
    assert all(w["duration_s"] == 8 * 3600 for w in body["windows"])
    assert list(empty.iterdir()) == []  # no ./var, no config, nothing


def test_no_server_configured_says_how_to_set_one(tmp_path: Path) -> None:
    result = runner.invoke(app, ["leases"])
    assert result.exit_code == 2
    assert "slotbroker login" in result.output
    assert list(tmp_path.glob("**/*.toml")) == []


def test_login_stores_a_private_profile_then_commands_use_it(srv: CliServer, no_profiles: Path) -> None:
    bad = runner.invoke(app, ["login", srv.url, "--token", "sb_wrong", "--name", "lab"])
    assert bad.exit_code == 1
    assert not (no_profiles / "slotbroker" / "config.toml").exists()

    good = runner.invoke(app, ["login", srv.url, "--token", srv.user, "--name", "lab"])
    assert good.exit_code == 0, good.output
    path = no_profiles / "slotbroker" / "config.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (
        runner.invoke(app, ["login", srv.url, "--token", srv.other, "--name", "b", "--no-default"]).exit_code
        == 0
    )

    listed = json.loads(runner.invoke(app, ["profiles", "-o", "json"]).stdout)
    assert listed == [
        {"name": "lab", "url": srv.url, "default": True},
        {"name": "b", "url": srv.url, "default": False},
    ]
    assert srv.user not in runner.invoke(app, ["profiles"]).stdout  # tokens are shortened

    mine = runner.invoke(app, ["find-slot", "-c", GPU, "--duration", "1h", "-o", "json"])  # default profile
    assert mine.exit_code == 0, mine.output
    named = runner.invoke(app, ["leases", "--profile", "b", "-o", "json"])
    assert named.exit_code == 0, named.output
    missing = runner.invoke(app, ["leases", "--profile", "nope"])
    assert missing.exit_code == 2
    assert "lab" in missing.output


def test_a_url_from_the_environment_never_borrows_a_profile_token(srv: CliServer) -> None:
    assert runner.invoke(app, ["login", srv.url, "--token", srv.user, "--name", "lab"]).exit_code == 0
    result = runner.invoke(app, ["leases"], env={"SLOTBROKER_URL": srv.url})
    assert result.exit_code == 1
    assert "401" in result.output


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ("now", lambda now: now),
        ("now+2h", lambda now: now + timedelta(hours=2)),
        ("+1d", lambda now: now + timedelta(days=1)),
        (
            "tomorrow 09:00",
            lambda now: (
                datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
                + timedelta(hours=9)
            ),
        ),
        ("2030-01-02", lambda now: datetime(2030, 1, 2, tzinfo=UTC)),
        ("2030-01-02 10:30", lambda now: datetime(2030, 1, 2, 10, 30, tzinfo=UTC)),
        ("2030-01-02T10:30:00+01:00", lambda now: datetime(2030, 1, 2, 9, 30, tzinfo=UTC)),
    ],
)
def test_every_time_form(srv: CliServer, form: str, expected: Any) -> None:
    now = datetime.now(UTC)
    body = json.loads(
        ok(srv, "find-slot", "-c", GPU, "--start", form, "--duration", "PT1H", "--tz", "UTC", "-o", "json")
    )
    started = datetime.fromisoformat(body["search_start"])
    assert abs((started - expected(now)).total_seconds()) < 120, (form, body["search_start"])


@pytest.mark.parametrize("duration", ["8h", "90m", "1d12h", "8:00:00", "PT8H"])
def test_every_duration_form(srv: CliServer, duration: str) -> None:
    seconds = {"8h": 28800, "90m": 5400, "1d12h": 129600, "8:00:00": 28800, "PT8H": 28800}[duration]
    body = json.loads(ok(srv, "find-slot", "-c", GPU, "--duration", duration, "--end", "+5d", "-o", "json"))
    assert {w["duration_s"] for w in body["windows"]} == {seconds}


def test_bad_time_names_the_option_and_gives_no_epoch(srv: CliServer) -> None:
    result = cli(srv, "find-slot", "-c", GPU, "--start", "soonish")
    assert result.exit_code == 2
    assert "--start" in result.output
    assert "tomorrow 09:00" in result.output
    far = cli(srv, "find-slot", "-c", "huge:1:VCPU=100000", "--duration", "1h", "--end", "+1d", "--tz", "UTC")
    assert far.exit_code == 1
    assert "nothing fits between" in far.output
    assert "+00:00" in far.output  # times with their offset, never epoch seconds


def test_book_show_rename_extend_cancel_and_every_output_format(srv: CliServer) -> None:
    ids = ok(srv, "offer", "-c", GPU, "--start", "+2h", "--duration", "4h", "-s", "earliest", "-o", "id")
    offer_id = ids.split()[0]
    lease_id = ok(srv, "accept", offer_id, "-o", "id").strip()
    assert len(lease_id) == 36

    as_json = json.loads(ok(srv, "leases", "-o", "json"))
    assert lease_id in [x["id"] for x in as_json]
    as_yaml = yaml.safe_load(ok(srv, "leases", "-o", "yaml"))
    assert as_yaml == as_json
    rows = list(csv.reader(io.StringIO(ok(srv, "leases", "-o", "csv", "--tz", "Asia/Kolkata"))))
    assert rows[0] == ["lease", "name", "status", "start", "end", "hosts"]
    assert lease_id in [r[0] for r in rows[1:]]
    assert all(r[3].endswith("+05:30") for r in rows[1:])
    assert lease_id in ok(srv, "leases", "-o", "id").split()
    assert lease_id in ok(srv, "leases", "--status", "pending", "-o", "id").split()
    assert lease_id not in ok(srv, "leases", "--status", "active", "-o", "id").split()
    assert lease_id not in ok(srv, "leases", "-o", "id", token=srv.other).split()  # another project's

    table = ok(srv, "lease", "show", lease_id)
    assert lease_id in table  # whole, at 80 columns
    assert "PENDING" in table

    before = json.loads(ok(srv, "lease", "show", lease_id, "-o", "json"))
    after = json.loads(ok(srv, "extend", lease_id, "--by", "2h", "-o", "json"))
    assert datetime.fromisoformat(after["end"]) == datetime.fromisoformat(before["end"]) + timedelta(hours=2)
    back = json.loads(ok(srv, "extend", lease_id, "--by", "-1h", "-o", "json"))
    assert datetime.fromisoformat(back["end"]) == datetime.fromisoformat(before["end"]) + timedelta(hours=1)

    assert json.loads(ok(srv, "cancel", lease_id, "-o", "json"))["status"] == "CANCELLED"
    gone = cli(srv, "extend", lease_id, "--by", "1h")
    assert gone.exit_code == 1
    assert "invalid_state" in gone.output


def test_tables_keep_ids_whole_at_80_columns(srv: CliServer) -> None:
    result = runner.invoke(
        app, ["providers", "--kind", "host", "--url", srv.url, "--token", srv.user], env={"COLUMNS": "80"}
    )
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    listed = json.loads(ok(srv, "providers", "--kind", "host", "-o", "json"))
    for p in listed[:20]:
        assert p["uuid"] in result.stdout


def test_sites_and_the_heat_map(srv: CliServer) -> None:
    sites = json.loads(ok(srv, "sites", "-o", "json"))["items"]
    assert len(sites) >= 30
    classes = [c for s in sites for c in s["classes"]]
    assert all(0 <= c["free"] <= c["capacity"] for c in classes)
    assert sorted(ok(srv, "sites", "-o", "id").split()) == sorted(s["name"] for s in sites)
    assert "free (largest on a host" in ok(srv, "sites")
    out = ok(srv, "calendar", "--class", "GPU_A30", "--tz", "UTC")
    assert "free GPU_A30" in out
    assert "your lease" in out
    site_lines = [line for line in out.splitlines() if line.endswith("GPU_A30") and "free" not in line]
    assert site_lines
    assert all(len(line.split()[1]) == 48 for line in site_lines)  # two days by hour


@pytest.mark.parametrize("command", [["find-slot"], ["offer"], ["leases"], ["jobs", "submit"], ["calendar"]])
def test_help_is_verbatim_at_80_columns(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    assert "-o, --output" in result.stdout
    if command[0] in ("find-slot", "offer"):
        assert "[@SITE]" in result.stdout
        assert "A:B:GBPS" in result.stdout
        assert "\U0001f171" not in result.stdout  # :B: is not an emoji


def test_the_cli_loads_no_server_module() -> None:
    code = "import json, sys\nimport slotbroker.cli.main\nprint(json.dumps(sorted(sys.modules)))\n"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, timeout=120
    )
    loaded = json.loads(out.stdout)
    heavy = [m for m in loaded if m.split(".")[0] in ("numpy", "sqlalchemy", "fastapi", "uvicorn")]
    server = [
        m for m in loaded if m.startswith(("slotbroker.store", "slotbroker.services", "slotbroker.api"))
    ]
    assert (heavy, server) == ([], [])
    assert "slotbroker.client" in loaded


def test_admin_refuses_to_create_a_database_unless_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    refused = runner.invoke(app, ["admin", "db", "current"])
    assert refused.exit_code == 2
    assert "--create" in refused.output
    assert list(tmp_path.iterdir()) == [tmp_path / "config"] or not list(tmp_path.glob("var"))
    assert not (tmp_path / "var").exists()
    made = runner.invoke(
        app, ["admin", "db", "upgrade", "--create", "--database-url", f"sqlite:///{tmp_path}/new.db"]
    )
    assert made.exit_code == 0, made.output
    assert (tmp_path / "new.db").exists()


def test_names_and_prefixes_in_every_id_argument(srv: CliServer) -> None:
    made = json.loads(
        ok(
            srv,
            "offer",
            "-c",
            GPU,
            "--start",
            "+3h",
            "--duration",
            "2h",
            "-s",
            "earliest",
            "--name",
            "exp-1",
            "-o",
            "json",
        )
    )
    assert made["name"] == "exp-1"
    assert json.loads(ok(srv, "offer-set", "show", "exp-1", "-o", "json"))["id"] == made["id"]
    renamed = json.loads(ok(srv, "offer-set", "rename", made["id"][:8], "exp-2", "-o", "json"))
    assert renamed["name"] == "exp-2"
    renewed = json.loads(ok(srv, "offer-set", "renew", "exp-2", "-o", "json"))
    assert renewed["expires"] >= made["expires"]

    lease_id = ok(srv, "accept", made["offers"][0]["id"][:8], "-o", "id").strip()
    shown = json.loads(ok(srv, "lease", "show", "exp-2", "-o", "json"))  # the lease takes the set's name
    assert shown["id"] == lease_id
    assert shown["placement"]["gpu"]  # which host is the gpu component
    assert json.loads(ok(srv, "lease", "show", lease_id[:8], "-o", "json"))["id"] == lease_id
    assert (
        json.loads(ok(srv, "lease", "rename", lease_id[:8], "training", "-o", "json"))["name"] == "training"
    )
    assert "BEGIN:VCALENDAR" in ok(srv, "lease", "ics", "training")
    assert json.loads(ok(srv, "extend", "training", "--by", "30m", "-o", "json"))["id"] == lease_id
    job = json.loads(
        ok(
            srv,
            "jobs",
            "submit",
            "--lease",
            "training",
            "--provisioner",
            "simulated",
            "-o",
            "json",
            "--",
            "true",
        )
    )
    assert job["lease_id"] == lease_id
    assert lease_id in ok(srv, "jobs", "list", "--lease", "training", "-o", "csv")
    assert json.loads(ok(srv, "cancel", "training", "--force", "-o", "json"))["status"] == "CANCELLED"
    unknown = cli(srv, "lease", "show", "no-such-name")
    assert unknown.exit_code == 1
    assert "not_found" in unknown.output


def test_refusals_say_what_would_work(srv: CliServer) -> None:
    offer_id = ok(srv, "offer", "-c", GPU, "--start", "+5h", "--duration", "1h", "-s", "earliest", "-o", "id")
    lease_id = ok(srv, "accept", offer_id.split()[0], "-o", "id").strip()
    too_far = cli(srv, "extend", lease_id, "--by", "60d", "--tz", "UTC")
    assert too_far.exit_code == 1
    assert "the furthest end possible now: 20" in too_far.output
    assert "+00:00" in too_far.output

    job = ok(
        srv, "jobs", "submit", "--lease", lease_id, "--provisioner", "simulated", "-o", "id", "--", "true"
    )
    refused = cli(srv, "cancel", lease_id)
    assert refused.exit_code == 1
    assert "jobs_running" in refused.output
    assert job.strip() in refused.output
    assert "--force" in refused.output
    assert json.loads(ok(srv, "cancel", lease_id, "--force", "-o", "json"))["status"] == "CANCELLED"


def test_calendar_feeds(srv: CliServer) -> None:
    url = ok(srv, "feed", "create", "phone", "-o", "id").strip()
    assert url.startswith(srv.url + "/v1/ical/")
    assert "BEGIN:VCALENDAR" in httpx.get(url, timeout=10).text
    [feed] = [f for f in json.loads(ok(srv, "feed", "list", "-o", "json")) if f["name"] == "phone"]
    assert json.loads(ok(srv, "feed", "revoke", str(feed["id"]), "-o", "json"))["revoked_at"]
    assert httpx.get(url, timeout=10).status_code == 404


def test_login_asks_for_the_token_when_not_given(srv: CliServer, no_profiles: Path) -> None:
    result = runner.invoke(app, ["login", srv.url, "--name", "asked"], input=srv.user + "\n")
    assert result.exit_code == 0, result.output
    assert srv.user not in result.output  # not echoed
    saved = (no_profiles / "slotbroker" / "config.toml").read_text()
    assert srv.user in saved
    assert 'default = "asked"' in saved


def test_a_bad_time_zone_names_the_option(srv: CliServer) -> None:
    result = cli(srv, "leases", "--tz", "Mars/Olympus")
    assert result.exit_code == 2
    assert "--tz" in result.output
