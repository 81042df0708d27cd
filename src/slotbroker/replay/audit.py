"""An independent audit of a replay's bookings: written apart from the schedulers, trusting none of them.

Why separate: a scheduler that overbooks would also believe its own bookkeeping. The audit starts from
nothing but the host bookings (host, job, [start, end), amount), the hosts' capacities and the jobs as
the trace gives them, and counts:

* ``overbooked``: instants at which a host's booked amount exceeds its capacity (one per host and
  maximal interval where it does);
* ``early``: jobs booked to start before they were submitted (future knowledge or time travel);
* ``wrong_size``: jobs whose bookings do not add up to their processors at every instant they run, or
  that do not run for exactly their real runtime.

``violations`` is their sum; a correct replay has 0.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from slotbroker.replay.trace import Job


@dataclass(frozen=True, slots=True)
class Booking:
    host: str
    job: int
    start: int
    end: int
    amount: int = 1


@dataclass(frozen=True)
class AuditReport:
    overbooked: int
    early: int
    wrong_size: int
    examples: tuple[str, ...]

    @property
    def violations(self) -> int:
        return self.overbooked + self.early + self.wrong_size


def _overbooked(bookings: list[Booking], capacity: int) -> list[tuple[int, int, int]]:
    """(start, end, level) of each maximal span where the summed amount exceeds ``capacity``."""
    deltas: dict[int, int] = defaultdict(int)
    for b in bookings:
        deltas[b.start] += b.amount
        deltas[b.end] -= b.amount
    spans: list[tuple[int, int, int]] = []
    level = 0
    over_since: int | None = None
    peak = 0
    for t in sorted(deltas):
        level += deltas[t]
        if level > capacity and over_since is None:
            over_since, peak = t, level
        elif level > capacity:
            peak = max(peak, level)
        elif over_since is not None:
            spans.append((over_since, t, peak))
            over_since = None
    return spans


def audit(
    jobs: Iterable[Job], starts: Iterable[int], bookings: Iterable[Booking], capacity: Mapping[str, int]
) -> AuditReport:
    """Audit ``bookings`` against host ``capacity`` and the ``jobs`` with their ``starts``."""
    by_host: dict[str, list[Booking]] = defaultdict(list)
    by_job: dict[int, list[Booking]] = defaultdict(list)
    for b in bookings:
        by_host[b.host].append(b)
        by_job[b.job].append(b)
    examples: list[str] = []
    overbooked = 0
    for host, rows in sorted(by_host.items()):
        spans = _overbooked(rows, capacity.get(host, 0))
        overbooked += len(spans)
        examples += [
            f"host {host}: {lvl} booked of {capacity.get(host, 0)} over [{s}, {e})" for s, e, lvl in spans
        ]
    early = wrong = 0
    for job, start in zip(jobs, starts, strict=True):
        rows = by_job.get(job.id, [])
        if start < job.submit or any(b.start < job.submit for b in rows):
            early += 1
            examples.append(f"job {job.id}: starts at {start}, submitted at {job.submit}")
        runs = {(b.start, b.end) for b in rows}
        if runs != {(start, start + job.run)} or sum(b.amount for b in rows) != job.procs:
            wrong += 1
            examples.append(
                f"job {job.id}: booked {sorted(runs)} x {sum(b.amount for b in rows)}, "
                f"ran [{start}, {start + job.run}) x {job.procs}"
            )
    return AuditReport(overbooked, early, wrong, tuple(examples[:20]))
