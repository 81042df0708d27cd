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
        app,
        [
            "replay",
            str(trace),
            "--json",
            "--html",
            str(html),
            "--plots",
            str(tmp_path / "svg"),
            "-p",
            "easy",
            "-p",
            "priority",
        ],
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
    assert sorted(p.name for p in (tmp_path / "svg").iterdir()) == [
        "slowdown_by_size.svg",
        "utilisation.svg",
        "waits.svg",
    ]


def test_an_unknown_policy_is_a_usage_error(tmp_path: Path) -> None:
    trace = tmp_path / "tiny.swf"
    trace.write_text(SWF)
    result = runner.invoke(app, ["replay", str(trace), "-p", "fifo"])
    assert result.exit_code == 2
    assert "unknown policy fifo" in result.output


def test_an_unknown_placement_is_a_usage_error(tmp_path: Path) -> None:
    trace = tmp_path / "tiny.swf"
    trace.write_text(SWF)
    result = runner.invoke(app, ["replay", str(trace), "--service-prefix", "2", "--placement", "nearest"])
    assert result.exit_code == 2
    assert "unknown placement nearest" in result.output


def test_a_trace_without_machine_size_is_a_usage_error(tmp_path: Path) -> None:
    trace = tmp_path / "nosize.swf"
    trace.write_text(SWF.replace("; MaxProcs: 2\n", ""))
    result = runner.invoke(app, ["replay", str(trace)])
    assert result.exit_code == 2
    assert "MaxProcs" in result.output


def test_a_trace_with_no_job_left_is_a_usage_error(tmp_path: Path) -> None:
    trace = tmp_path / "big.swf"
    trace.write_text(SWF)
    result = runner.invoke(app, ["replay", str(trace), "--capacity", "1"])
    assert result.exit_code == 0  # the two one-processor jobs remain
    result = runner.invoke(app, ["replay", str(tmp_path / "missing.swf")])
    assert result.exit_code == 2
    empty = tmp_path / "empty.swf"
    empty.write_text("; MaxProcs: 2\n")
    result = runner.invoke(app, ["replay", str(empty)])
    assert result.exit_code == 2
    assert "no job is left" in result.output


def test_alibaba_pods_report_placement_per_node_order(tmp_path: Path) -> None:
    nodes = tmp_path / "alibaba_openb_node_list_all_node.csv"
    nodes.write_text("sn,cpu_milli,memory_mib,gpu,model\nn-0,8000,1024,1,T4\n")
    pods = tmp_path / "pods.csv"
    pods.write_text(
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,"
        "scheduled_time\np-0,1000,100,1,600,,LS,Running,0,100,0\np-1,1000,100,1,600,,LS,Running,10,20,10\n"
    )
    result = runner.invoke(app, ["replay", str(pods), "--json", "-p", "first_fit"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    # p-1 needs 600 thousandths of the only card while p-0 holds 600 of its 1000: not placed
    assert doc["policies"]["first_fit"]["gpu_pods_placed_fraction"] == 0.5
    assert doc["all_at_once"]["first_fit"]["violations"] == 0


def test_service_prefix_compares_the_real_services_with_the_fast_path(tmp_path: Path) -> None:
    trace = tmp_path / "tiny.swf"
    trace.write_text(SWF)
    result = runner.invoke(
        app, ["replay", str(trace), "--json", "-p", "conservative", "--service-prefix", "3"]
    )
    assert result.exit_code == 0, result.output
    service = json.loads(result.stdout)["service_path"]
    assert service["jobs"] == 3
    assert service["agree"] == 3  # A at 0, B and C at 100 on both paths
    assert service["violations"] == 0
