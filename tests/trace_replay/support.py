"""Small traces for the replay tests, written out by hand so their answers can be worked out by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from slotbroker.replay.trace import Job, Trace

TRACES = Path(__file__).resolve().parents[2].parent / "shared" / "traces"


def trace_file(name: str) -> Path:
    path = TRACES / name
    if not path.is_file():
        pytest.skip(f"trace file {path} is absent (shared/traces; PROVENANCE.md says where it comes from)")
    return path


def make_trace(capacity: int, *jobs: tuple[int, int, int, int], epoch_s: int = 1_000_000_000) -> Trace:
    """Jobs as (submit, run, req, procs), numbered from 1 in the given order."""
    return Trace(
        "hand",
        tuple(Job(i, s, r, q, p) for i, (s, r, q, p) in enumerate(jobs, start=1)),
        capacity,
        epoch_s=epoch_s,
    )


# Capacity 2. J1 takes both processors, asks 100 s, ends after 10; J2 (both, 50 s) and J3 (one, 5 s)
# arrive behind it. The policies differ only in what J1's early end does for J2 and J3.
EARLY_END = make_trace(2, (0, 10, 100, 2), (1, 50, 50, 2), (2, 5, 5, 1))
