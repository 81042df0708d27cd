"""``slotbroker replay``: the JSON shape, the HTML report, bad input."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from slotbroker.cli.main import app

runner = CliRunner()
SWF = "; MaxProcs: 2\n; UnixStartTime: 1000000000\n" + "".join(
    f"{i} {s} 0 {r} {p} -1 -1 {p} {q} -1 1 1 1 -1 -1 -1 -1 -1\n"
    for i, (s, r, q, p) in enumerate([(0, 100, 100, 2), (10, 50, 200, 1), (20, 30, 30, 1)], start=1)
)


def test_json_has_the_documented_shape(tmp_path: Path) -> None:
    trace = tmp_path / "tiny.swf"
    trace.write_text(SWF)
    html = tmp_path / "report.html"
    result = runner.invoke(
        app, ["replay", str(trace), "--json", "--html", str(html), "-p", "easy", "-p", "priority"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout.strip().splitlines()[-1])
    assert doc["trace"] == "tiny"
    assert doc["jobs"] == 3
    assert set(doc["policies"]) == {"easy", "priority"}
    easy = doc["policies"]["easy"]
    assert {"avg_bounded_slowdown", "mean_wait_s", "utilization", "violations", "wall_s"} <= set(easy)
    assert easy["violations"] == 0
    assert easy["mean_wait_s"] == round(170 / 3, 1)  # tests/trace_replay/test_metrics.py works it out
    page = html.read_text()
    assert page.count("<svg") == 3
    assert "Wait distribution" in page


def test_an_unknown_policy_is_a_usage_error(tmp_path: Path) -> None:
    trace = tmp_path / "tiny.swf"
    trace.write_text(SWF)
    result = runner.invoke(app, ["replay", str(trace), "-p", "fifo"])
    assert result.exit_code == 2
    assert "unknown policy fifo" in result.output


def test_a_trace_without_machine_size_is_a_usage_error(tmp_path: Path) -> None:
    trace = tmp_path / "nosize.swf"
    trace.write_text(SWF.replace("; MaxProcs: 2\n", ""))
    result = runner.invoke(app, ["replay", str(trace)])
    assert result.exit_code == 2
    assert "MaxProcs" in result.output
