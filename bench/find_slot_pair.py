"""One request kind through two engine trees in ONE process, request by request, each right after a
baseline request (as ``find_slot_scale.py`` times them): a paired comparison that the machine's
speed swings (2x between runs here) cannot bias, since both trees see the same moments.

The other tree (``--base-src``, a ``src`` directory, e.g. from ``git archive``) is copied to a
temporary directory as the package ``slotbroker_base``; both build their own index from the same
rows. Each start runs both trees in alternating order; their answers (placements, alternates) must
be equal. Prints ONE JSON object: CPU p50 of the calling thread per tree and head/base.

``python bench/find_slot_pair.py --base-src /tmp/base/src [--kind headline] [--hosts 1000]
[--bookings 100000] [--reps 12]``
"""

from __future__ import annotations

import argparse
import importlib
import json
import pickle
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import slotbroker.engine as head
from find_slot import baseline, bookings, kinds, topology
from find_slot_scale import starts


def _renamed(src: Path, into: Path) -> None:
    """``src/slotbroker`` copied as ``into/slotbroker_base``, its absolute imports renamed."""
    dst = into / "slotbroker_base"
    shutil.copytree(src / "slotbroker", dst)
    for f in dst.rglob("*.py"):
        text = f.read_text()
        f.write_text(re.sub(r"\bslotbroker(?=[.\s])", "slotbroker_base", text))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-src", required=True, type=Path)
    ap.add_argument("--kind", default="headline")
    ap.add_argument(
        "--hosts", type=int, default=1_000, help="a multiple of 25 (25 hosts a site), at least 1,000"
    )
    ap.add_argument("--bookings", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=12)
    args = ap.parse_args()
    if args.hosts < 1_000 or args.hosts % 25:
        # the world's facility ports sit at every fourth of the first 40 sites, and the kinds name them
        ap.error(f"--hosts {args.hosts}: a multiple of 25 of at least 1,000 (40 sites of 25 hosts)")
    tmp = Path(tempfile.mkdtemp(prefix="slotbroker-base-"))
    try:
        _renamed(args.base_src, tmp)
        sys.path.insert(0, str(tmp))
        base: Any = importlib.import_module("slotbroker_base.engine")
        base_req: Any = importlib.import_module("slotbroker_base.domain.request")
        hosts, sites, links, ports = topology(n_sites=args.hosts // 25, per_site=25)
        table = bookings(hosts, links, ports, args.bookings, seed=3)
        snap = head.Snapshot(hosts, sites, links, ports, table)
        # the same rows as the other tree's own types (protocol 0 names classes in plain text)
        snap_b = pickle.loads(pickle.dumps(snap, protocol=0).replace(b"slotbroker.", b"slotbroker_base."))
        ih, ib = head.CalendarIndex(snap), base.CalendarIndex(snap_b)

        def as_base(req: Any) -> Any:
            return base_req.SlotRequest.model_validate(req.model_dump())

        for s in starts(2, 99):  # warm: lazy grids, once per generation
            for make in kinds(s).values():
                head.find_slots(ih, make(), explain=False)
                base.find_slots(ib, as_base(make()), explain=False)
        cpu: dict[str, list[float]] = {"head": [], "base": []}
        for j, s in enumerate(starts(16, 100) * args.reps):
            rh = kinds(s)[args.kind]()
            rb = as_base(rh)
            got: dict[str, Any] = {}
            for which in ("head", "base") if j % 2 else ("base", "head"):
                baseline(ih, snap, rh, True)
                c = time.thread_time()
                got[which] = (
                    head.find_slots(ih, rh, explain=False)
                    if which == "head"
                    else base.find_slots(ib, rb, explain=False)
                )
                cpu[which].append((time.thread_time() - c) * 1000)
            same = [(w.placement, w.alternates) for w in got["head"].windows] == [
                (w.placement, w.alternates) for w in got["base"].windows
            ]
            assert same, f"answers differ at start {s}"
        h, b = statistics.median(cpu["head"]), statistics.median(cpu["base"])
        print(
            json.dumps(
                {
                    "kind": args.kind,
                    "hosts": args.hosts,
                    "bookings": args.bookings,
                    "n": len(cpu["head"]),
                    "head_cpu_p50_ms": round(h, 3),
                    "base_cpu_p50_ms": round(b, 3),
                    "head_over_base": round(h / b, 3),
                }
            )
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
