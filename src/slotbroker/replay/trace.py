"""Jobs of a workload trace, and the job filter of the published baseline.

Why one filter: our figures are put beside predictsim's published table
(``shared/traces/predictsim_easy_metrics.tsv``: 28,481 KTH-SP2 jobs), so a job we keep and they dropped,
or the reverse, makes the comparison meaningless. The filter (``published_filter``):

* when only one of allocated / requested processors is set (> 0), it stands for both; the job's size is
  the *requested* count (what the user asked for, which is all a scheduler knows at submit time);
* dropped: a size above the machine's processors or not positive, a runtime or requested time not
  positive, a negative submit time; jobs submitted at time 0 are kept;
* the runtime is capped at the requested time (the machine killed jobs at their limit).

SWF (Standard Workload Format, Parallel Workloads Archive) columns used, 1-based: 1 job id, 2 submit
time, 4 runtime, 5 allocated processors, 8 requested processors, 9 requested time, 12 user. Header
lines start with ``;``; ``MaxProcs`` (else ``MaxNodes``) gives the machine size and ``UnixStartTime``
the epoch of time 0. Gzipped files are read transparently.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Job:
    """One job: times in seconds relative to the trace's time 0, ``procs`` processors (cores)."""

    id: int
    submit: int
    run: int  # the real runtime (after the filter: at most ``req``)
    req: int  # the user's requested time: the booking's duration; the only estimate a policy may use
    procs: int
    user: int = -1


@dataclass(frozen=True)
class Trace:
    name: str
    jobs: tuple[Job, ...]
    capacity: int  # processors of the machine (hosts x cores per host)
    epoch_s: int = 0  # Unix time of the trace's time 0
    dropped: int = 0  # jobs the filter removed
    header: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SwfRecord:
    """The SWF columns the filter reads, as written (``-1`` means unknown)."""

    id: int
    submit: int
    run: int
    alloc_procs: int
    req_procs: int
    req_time: int
    user: int


def _open_text(path: Path) -> Iterator[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        yield from fh


def parse_swf_lines(lines: Iterable[str]) -> tuple[dict[str, str], list[SwfRecord]]:
    """Header fields and records; a malformed record raises ``ValueError`` naming its line number."""
    header: dict[str, str] = {}
    records: list[SwfRecord] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith(";"):
            key, sep, value = line[1:].partition(":")
            if sep:
                header.setdefault(key.strip(), value.strip())
            continue
        fields = line.split()
        if len(fields) < 12:
            raise ValueError(f"line {number}: expected 18 SWF columns, got {len(fields)}")
        try:
            vals = [int(float(f)) for f in fields[:12]]
        except ValueError:
            raise ValueError(f"line {number}: a column is not a number") from None
        records.append(SwfRecord(vals[0], vals[1], vals[3], vals[4], vals[7], vals[8], vals[11]))
    return header, records


def machine_size(header: dict[str, str]) -> int | None:
    for key in ("MaxProcs", "MaxNodes"):
        value = header.get(key, "").split()
        if value and value[0].isdigit() and int(value[0]) > 0:
            return int(value[0])
    return None


def published_filter(record: SwfRecord, capacity: int) -> Job | None:
    """The job the published baseline keeps for ``record``, or None when it drops it (module docstring)."""
    alloc, req = record.alloc_procs, record.req_procs
    if alloc <= 0 < req:
        alloc = req
    if req <= 0 < alloc:
        req = alloc
    if req <= 0 or req > capacity or alloc > capacity:
        return None
    if record.run <= 0 or record.req_time <= 0 or record.submit < 0:
        return None
    return Job(record.id, record.submit, min(record.run, record.req_time), record.req_time, req, record.user)


def read_swf(path: Path | str, *, capacity: int | None = None, name: str | None = None) -> Trace:
    """Read an SWF file (``.gz`` or plain) and apply ``published_filter``; jobs sorted by submit time
    (ties: job id). ``capacity`` overrides the header's machine size."""
    path = Path(path)
    header, records = parse_swf_lines(_open_text(path))
    size = capacity or machine_size(header)
    if size is None:
        raise ValueError(f"{path}: no MaxProcs/MaxNodes in the header; pass the machine size")
    kept = [job for rec in records if (job := published_filter(rec, size)) is not None]
    kept.sort(key=lambda j: (j.submit, j.id))
    epoch = header.get("UnixStartTime", "0").split()
    return Trace(
        name=name or path.name.split(".")[0],
        jobs=tuple(kept),
        capacity=size,
        epoch_s=int(epoch[0]) if epoch and epoch[0].isdigit() else 0,
        dropped=len(records) - len(kept),
        header=header,
    )


def prefix(trace: Trace, jobs: int) -> Trace:
    """The first ``jobs`` jobs of ``trace`` (by submit time): the service path replays a prefix."""
    return Trace(trace.name, trace.jobs[:jobs], trace.capacity, trace.epoch_s, trace.dropped, trace.header)
