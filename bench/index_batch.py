"""Calendar index updates, one at a time vs in a batch: per-allocation cost of ``StepTable.add`` and
``add_many`` (a 1,000-row table with its block grid, as the calendar index keeps it) and of
``CalendarIndex.add`` and ``add_many`` (host and site tables, over-booking flags), and of ``drop_past``.

``python bench/index_batch.py [--rows 1000] [--base 100000] [--batch 10000]``; prints ONE JSON object
(microseconds per allocation). Both variants run in one process, one after the other, on copies of the
same starting table.
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import numpy as np

from slotbroker.engine import (
    AllocationSnap,
    AllocationTable,
    CalendarIndex,
    HostSnap,
    InventorySnap,
    SiteSnap,
    Snapshot,
)
from slotbroker.engine.steps import StepTable

DAY = 86400


def _bookings(rng: np.random.Generator, rows: int, n: int) -> tuple[np.ndarray, ...]:
    start = rng.integers(0, 30 * DAY, n)
    return rng.integers(0, rows, n), start, start + rng.integers(600, DAY, n), rng.integers(1, 4, n)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--base", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=10_000)
    args = parser.parse_args()
    rng = np.random.default_rng(16)
    base = StepTable.build(args.rows, *_bookings(rng, args.rows, args.base))
    base.grid()
    r, s, e, a = _bookings(rng, args.rows, args.batch)
    one, many = copy.deepcopy(base), copy.deepcopy(base)
    t0 = time.perf_counter()
    for i in range(args.batch):
        one.add(int(r[i]), int(s[i]), int(e[i]), int(a[i]))
    t_one = time.perf_counter() - t0
    t0 = time.perf_counter()
    many.add_many(r, s, e, a)
    t_many = time.perf_counter() - t0
    t0 = time.perf_counter()
    many.drop_past(15 * DAY)
    t_drop = time.perf_counter() - t0

    hosts = tuple(
        HostSnap(i + 1, f"h{i}", f"S{i % 20}", inventories={"VCPU": InventorySnap(64)})
        for i in range(args.rows)
    )
    sites = tuple(SiteSnap(f"S{i}") for i in range(20))
    hr, hs, he, ha = _bookings(rng, args.rows, args.base)
    snap = Snapshot(
        hosts,
        sites,
        allocations=AllocationTable.from_rows(
            AllocationSnap(int(x) + 1, "VCPU", int(w), int(y), int(z))
            for x, y, z, w in zip(hr, hs, he, ha, strict=True)
        ),
    )
    batch = [
        AllocationSnap(int(x) + 1, "VCPU", int(w), int(y), int(z))
        for x, y, z, w in zip(r, s, e, a, strict=True)
    ]
    idx_one, idx_many = CalendarIndex(snap), CalendarIndex(snap)
    t0 = time.perf_counter()
    for al in batch:
        idx_one.add(al)
    t_idx_one = time.perf_counter() - t0
    t0 = time.perf_counter()
    idx_many.add_many(batch)
    t_idx_many = time.perf_counter() - t0
    per = 1e6 / args.batch
    doc = {
        "rows": args.rows,
        "base_bookings": args.base,
        "batch": args.batch,
        "steptable_add_us": round(t_one * per, 1),
        "steptable_add_many_us": round(t_many * per, 1),
        "steptable_speedup": round(t_one / t_many, 1),
        "calendar_add_us": round(t_idx_one * per, 1),
        "calendar_add_many_us": round(t_idx_many * per, 1),
        "calendar_speedup": round(t_idx_one / t_idx_many, 1),
        "drop_past_ms": round(t_drop * 1e3, 1),
    }
    print(json.dumps(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
