"""The SWF reader and the published job filter."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from slotbroker.replay.trace import SwfRecord, parse_swf_lines, published_filter, read_swf

from .support import trace_file

HEADER = "; MaxProcs: 8\n; UnixStartTime: 1000\n"


def swf_line(job: int, submit: int, run: int, alloc: int, req_procs: int, req_time: int) -> str:
    return f"{job} {submit} 0 {run} {alloc} -1 -1 {req_procs} {req_time} -1 1 7 1 -1 -1 -1 -1 -1\n"


def test_the_filter_drops_what_the_published_table_drops() -> None:
    keep = published_filter(SwfRecord(1, 0, 50, 4, 4, 100, 7), 8)
    assert keep is not None
    assert (keep.submit, keep.run, keep.req, keep.procs) == (
        0,
        50,
        100,
        4,
    )
    assert published_filter(SwfRecord(2, 5, 50, 9, 9, 100, 7), 8) is None  # more than the machine
    assert published_filter(SwfRecord(3, 5, 0, 4, 4, 100, 7), 8) is None  # runtime not positive
    assert published_filter(SwfRecord(4, 5, 50, 4, 4, -1, 7), 8) is None  # requested time not positive
    assert published_filter(SwfRecord(5, -3, 50, 4, 4, 100, 7), 8) is None  # negative submit
    assert published_filter(SwfRecord(6, 5, 50, -1, -1, 100, 7), 8) is None  # no size at all


def test_one_processor_count_stands_for_both_and_the_runtime_is_capped() -> None:
    only_alloc = published_filter(SwfRecord(1, 0, 50, 3, -1, 100, 7), 8)
    only_req = published_filter(SwfRecord(2, 0, 50, -1, 5, 100, 7), 8)
    over = published_filter(SwfRecord(3, 0, 150, 2, 2, 100, 7), 8)
    assert only_alloc is not None
    assert only_alloc.procs == 3
    assert only_req is not None
    assert only_req.procs == 5
    assert over is not None
    assert over.run == 100


def test_read_swf_gzipped_with_header(tmp_path: Path) -> None:
    path = tmp_path / "tiny.swf.gz"
    body = HEADER + swf_line(2, 30, 10, 1, 1, 20) + swf_line(1, 0, 5, 9, 9, 10) + swf_line(3, 10, 5, 2, 2, 10)
    with gzip.open(path, "wt") as fh:
        fh.write(body)
    trace = read_swf(path)
    assert trace.capacity == 8
    assert trace.epoch_s == 1000
    assert trace.dropped == 1
    assert [j.id for j in trace.jobs] == [3, 2]  # by submit time; job 1 (9 procs) dropped


def test_a_malformed_record_names_its_line() -> None:
    with pytest.raises(ValueError, match="line 2"):
        parse_swf_lines(["; MaxProcs: 8", "1 0 0 x 1 -1 -1 1 10 -1 1 1 1 -1 -1 -1 -1 -1"])


def test_kth_sp2_after_the_filter_has_the_published_job_count() -> None:
    trace = read_swf(trace_file("KTH-SP2_predictsim_log.swf.gz"))
    assert len(trace.jobs) == 28_481  # predictsim_easy_metrics.tsv, column "length"
    assert trace.capacity == 100
    assert trace.jobs[0].submit == 0  # jobs submitted at time 0 are kept
    assert all(0 < j.run <= j.req and 0 < j.procs <= 100 for j in trace.jobs)


@pytest.mark.slow
def test_kth_sp2_replays_beside_the_published_table() -> None:
    """The whole trace (~10 s): our EASY and EASY-SJBF land on the published figures (92.58, 69.41), the
    priority variant beats both with user estimates only, and the audit finds nothing."""
    from slotbroker.replay.published import baseline_for
    from slotbroker.replay.runner import replay_trace

    path = trace_file("KTH-SP2_predictsim_log.swf.gz")
    published = baseline_for("KTH-SP2", path.with_name("predictsim_easy_metrics.tsv"))
    results = {r.run.policy: r for r in replay_trace(read_swf(path), ["easy", "easy_sjbf", "priority"])}
    assert all(r.audit.violations == 0 for r in results.values())
    assert abs(results["easy"].metrics.avg_bounded_slowdown - published.get("easy", 92.58)) < 0.5
    assert abs(results["easy_sjbf"].metrics.avg_bounded_slowdown - published.get("easy_sjbf", 69.41)) < 0.5
    assert results["priority"].metrics.avg_bounded_slowdown < 69.41
