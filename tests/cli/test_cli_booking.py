"""``slotbroker offer``, ``accept``, ``reject``, ``leases``, ``extend`` and ``cancel`` against a live
server loaded by ``slotbroker admin demo --load-only --days 3`` (user tokens of team-a and team-b)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cli_server import CliServer, demo_server
from slotbroker.cli.main import app
from slotbroker.cli.output import first

runner = CliRunner()
HOUR = 3600


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliServer]:
    with demo_server(tmp_path_factory.mktemp("cli-booking"), days=3) as server:
        yield server


def invoke(srv: CliServer, *args: str, token: str | None = None) -> Any:
    return runner.invoke(app, [*args, "--url", srv.url, "--token", token or srv.user], catch_exceptions=False)


def ok_json(srv: CliServer, *args: str, token: str | None = None) -> Any:
    result = invoke(srv, *args, "-o", "json", token=token)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


@pytest.fixture
def request_file(tmp_path: Path) -> Path:
    """One GPU for 4 hours within the next day (starting on a whole hour in the future)."""
    now = int(time.time())
    start = now - now % HOUR + 2 * HOUR
    doc = {
        "components": [{"name": "gpu", "resources": {"VCPU": 8, "MEMORY_MB": 32768, "GPU_A30": 1}}],
        "earliest_start": iso(start),
        "latest_end": iso(start + 24 * HOUR),
        "duration": "PT4H",
    }
    path = tmp_path / "req.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_offer_accept_list_extend_cancel(url: CliServer, request_file: Path) -> None:
    table = invoke(url, "offer", "--file", str(request_file), "--max-offers", "2")
    assert table.exit_code == 0, table.output
    assert "offer set" in table.output
    assert ": OPEN, expires" in table.output

    view = ok_json(url, "offer", "--file", str(request_file), "-s", "earliest", "--max-offers", "1")
    assert view["project"] == "team-a"
    assert view["status"] == "OPEN"
    assert [o["strategy"] for o in view["offers"]] == ["earliest"]
    offer = view["offers"][0]

    accepted = invoke(url, "accept", offer["id"])
    assert accepted.exit_code == 0, accepted.output
    assert "accepted" in accepted.output
    assert "PENDING" in accepted.output

    again = invoke(url, "accept", offer["id"])
    assert again.exit_code == 1
    assert "offer_not_open" in again.output

    leases = ok_json(url, "leases")
    assert [x["project"] for x in leases] == ["team-a"]
    lease = leases[0]
    assert lease["status"] == "PENDING"
    assert (lease["start"], lease["end"]) == (offer["start"], offer["end"])
    assert lease["id"] in invoke(url, "leases", "--status", "pending").output
    everyone = ok_json(url, "leases", "--limit", "10000", token=url.admin)  # an admin: every project
    assert lease["id"] in [x["id"] for x in everyone]
    assert len({x["project"] for x in everyone}) > 1
    assert ok_json(url, "leases", "--project", "nobody", token=url.admin) == []
    assert ok_json(url, "leases", token=url.other) == []

    extended = ok_json(url, "extend", lease["id"], "--by", "PT2H")
    old_end = datetime.fromisoformat(lease["end"])
    assert datetime.fromisoformat(extended["end"]) == old_end + timedelta(hours=2)
    assert extended["generation"] > lease["generation"]
    new_end = (old_end + timedelta(hours=1)).isoformat()
    shortened = invoke(url, "extend", lease["id"], "--end", new_end)
    assert shortened.exit_code == 0, shortened.output
    assert "->" in shortened.output

    cancelled = ok_json(url, "cancel", lease["id"])
    assert cancelled["status"] == "CANCELLED"
    assert invoke(url, "cancel", lease["id"]).exit_code == 0  # idempotent
    listed = ok_json(url, "leases", "--status", "CANCELLED")
    assert lease["id"] in [x["id"] for x in listed]

    late = invoke(url, "extend", lease["id"], "--by", "PT1H")
    assert late.exit_code == 1
    assert "invalid_state" in late.output


def test_reject_frees_the_offer(url: CliServer, request_file: Path) -> None:
    view = ok_json(url, "offer", "--file", str(request_file), "--max-offers", "2")
    assert view["project"] == "team-a"  # the token's project
    first = view["offers"][0]["id"]
    rejected = invoke(url, "reject", first)
    assert rejected.exit_code == 0, rejected.output
    assert "REJECTED" in rejected.output
    assert ok_json(url, "reject", first)["state"] == "REJECTED"  # idempotent
    refused = invoke(url, "accept", first)
    assert refused.exit_code == 1
    assert "offer_not_open" in refused.output
    # another project cannot see this offer at all
    hidden = invoke(url, "accept", view["offers"][1]["id"], token=url.other)
    assert hidden.exit_code == 1
    assert "not_found" in hidden.output


def test_errors_exit_non_zero_with_the_code(url: CliServer, request_file: Path) -> None:
    missing = invoke(url, "accept", "no-such-offer")
    assert missing.exit_code == 1
    assert "not_found" in missing.output

    gone = invoke(url, "cancel", "00000000-0000-0000-0000-000000000000")
    assert gone.exit_code == 1
    assert "not_found" in gone.output

    both = invoke(url, "extend", "00000000-0000-0000-0000-000000000000", "--by", "PT1H", "--end", "x")
    assert both.exit_code == 2  # bad input is refused before anything is sent
    assert "--end or --by" in both.output

    bad_status = invoke(url, "leases", "--status", "SLEEPING")
    assert bad_status.exit_code == 2
    assert "validation_error" in bad_status.output

    bad_request = invoke(url, "offer", "--file", str(request_file), "--duration", "PT0S")
    assert bad_request.exit_code == 2
    assert "validation_error" in bad_request.output

    view = ok_json(url, "offer", "--file", str(request_file), "--strategy", "earliest")
    accepted = ok_json(url, "accept", view["offers"][0]["id"])
    for args in (["--by", "P1M"], ["--end", "soonish"], ["--by", "1h", "--end", "now"], []):
        result = invoke(url, "extend", accepted["uuid"], *args)
        assert result.exit_code == 2, (args, result.output)
        assert "validation_error" in result.output
    too_long = invoke(url, "extend", accepted["uuid"], "--by", "P60D")
    assert too_long.exit_code == 1
    assert "lease_too_long" in too_long.output or "outside_extension_window" in too_long.output
    assert invoke(url, "cancel", accepted["uuid"]).exit_code == 0


def test_nothing_fits_exits_one(url: CliServer, tmp_path: Path) -> None:
    now = int(time.time())
    doc = {
        "components": [{"name": "huge", "resources": {"GPU_A30": 999}}],
        "earliest_start": iso(now + HOUR),
        "latest_end": iso(now + 5 * HOUR),
        "duration": "PT1H",
    }
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(doc))
    result = invoke(url, "offer", "--file", str(path))
    assert result.exit_code in (1, 2), result.output
    assert "nothing fits" in result.output or "error" in result.output


def test_a_listing_cut_at_its_limit_says_so(url: CliServer) -> None:
    cut = invoke(url, "leases", "--limit", "3", token=url.admin)  # the demo has hundreds of leases
    assert cut.exit_code == 0, cut.output
    assert "3 lease(s)" in cut.output
    assert "The first 3 leases (newest first) shown; more match." in " ".join(cut.output.split())
    ids = invoke(url, "leases", "--limit", "3", "-o", "id", token=url.admin)
    assert len(ids.stdout.split()) == 3  # bare ids stay bare: the note is the table's
    everything = invoke(url, "leases", "--limit", "10000", token=url.admin)
    assert everything.exit_code == 0, everything.output
    assert "more match" not in everything.output
    sites = invoke(url, "providers", "--kind", "site", "--limit", "1", token=url.admin)
    assert "The first 1 providers shown; more match." in " ".join(sites.output.split())


def test_first_reads_one_more_than_it_keeps() -> None:
    read: list[int] = []

    def items(n: int) -> Iterator[int]:
        for i in range(n):
            read.append(i)
            yield i

    assert first(items(5), 5) == ([0, 1, 2, 3, 4], False)
    read.clear()
    assert first(items(100), 5) == ([0, 1, 2, 3, 4], True)
    assert read == [0, 1, 2, 3, 4, 5]
    assert first(items(0), 1) == ([], False)


def test_an_error_stays_one_line_when_piped(url: CliServer) -> None:
    """Piped (as under CliRunner), Rich wrapped error lines at 80 columns, cutting a message in two for
    grep and logs; each error line is now whole."""
    name = "CUSTOM_A_CLASS_NAME_LONG_ENOUGH_TO_PASS_EIGHTY_COLUMNS_X"
    got = invoke(url, "find-slot", "-c", f"w:1:{name}=1", "--duration", "1h")
    assert got.exit_code == 2, got.output
    whole = f"unknown resource class '{name}': no inventory has it"
    lines = got.output.splitlines()
    assert any(line.startswith("error (422 validation_error)") and whole in line for line in lines), lines
    assert any(line.startswith(f"  /components/0/resources/{name}") and whole in line for line in lines), (
        lines
    )
