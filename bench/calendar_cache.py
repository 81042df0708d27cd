"""Calendar cache benchmark: a find-slot after every booking, through the services on SQLite.

The find-slot bench's world (``--hosts`` hosts over 40 sites, ``--bookings`` never-overbooked
allocations) is loaded into a fresh SQLite database; then ``--rounds`` times: book a small lease through
``LeaseService.create`` and run one find-slot through ``FindSlotService.find``. Before decision 0030 every
booking moved the calendar generation and the next find-slot re-read every allocation row; now the cache
replays the booking. Prints ONE JSON object: load time, first build, per-round booking and find-slot
times (median, p90), the cache's rebuild and replay counts.

``python bench/calendar_cache.py [--hosts 1000] [--bookings 100000] [--rounds 50]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from find_slot import T0, bookings, iso, topology
from http_find_slot import bookings_of, topology_doc
from slotbroker.bootstrap import build_services
from slotbroker.config import Settings
from slotbroker.engine import AllocationTable, Snapshot
from slotbroker.services.inventory import demo_data
from slotbroker.store import migrate
from slotbroker.store.db import Database
from slotbroker.wire.leases import CreateLease, LeaseItemSpec

DAY = 86400


def world(n_hosts: int, n_bookings: int) -> Snapshot:
    per_site = max(1, n_hosts // 40)
    hosts, sites, links, ports = topology(40, per_site)
    table: AllocationTable = bookings(hosts, links, ports, n_bookings)
    return Snapshot(hosts=hosts, sites=sites, links=links, ports=ports, allocations=table)


def find_doc(start: int) -> dict[str, object]:
    return {
        "components": [
            {"name": "worker", "count": 2, "resources": {"VCPU": 16, "MEMORY_MB": 65536}},
            {"name": "edge", "resources": {"VCPU": 2, "MEMORY_MB": 4096}},
        ],
        "groups": [{"kind": "same_site", "components": ["worker", "edge"]}],
        "earliest_start": iso(start),
        "latest_end": iso(start + 7 * DAY),
        "duration": "PT4H",
        "limit": 1,
    }


def pct(xs: list[float], q: float) -> float:
    return round(sorted(xs)[min(len(xs) - 1, int(q * len(xs)))] * 1000, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--bookings", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    snap = world(args.hosts, args.bookings)
    now = T0 + DAY  # the bench's clock: the bookings span [T0, T0 + 30 days)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'cache.db'}"
        db = Database(url)
        migrate.upgrade(db.engine)
        t0 = time.perf_counter()
        settings = Settings(
            database_url=url, migrate_on_start=False, event_loop_interval_s=0, planner_workers=0
        )
        svc = build_services(settings, db)
        svc.topology.import_(topology_doc(snap))
        loaded = demo_data.load_bookings(db, bookings_of(snap, 0), now_s=now)
        load_s = time.perf_counter() - t0
        hosts = {
            h.name: str(h.uuid)
            for r in svc.topology.export().providers
            for s in r.children
            for h in s.children
        }
        names = sorted(hosts)
        t0 = time.perf_counter()
        svc.calendar.current(now)
        first_s = time.perf_counter() - t0
        rebuilds0 = svc.calendar.rebuilds
        book: list[float] = []
        find: list[float] = []
        for i in range(args.rounds):
            start = now + 3600 * (1 + i % 200)
            body = CreateLease(
                name=f"bench{i}",
                start=start_dt(start),
                end=start_dt(start + 1800),
                items=[
                    LeaseItemSpec(
                        provider_uuid=hosts[names[(i * 37) % len(names)]], resource_class="VCPU", amount=1
                    )
                ],
            )
            t0 = time.perf_counter()
            svc.leases.create(body, project="bench", now_s=now)
            t1 = time.perf_counter()
            svc.find_slot.find(find_doc(now + 3600), now_s=now, budget=False)
            t2 = time.perf_counter()
            book.append(t1 - t0)
            find.append(t2 - t1)
        doc = {
            "hosts": len(snap.hosts),
            "allocations": len(snap.allocations),
            "bookings_loaded": loaded,
            "load_s": round(load_s, 1),
            "first_build_s": round(first_s, 2),
            "rounds": args.rounds,
            "booking_ms_p50": pct(book, 0.5),
            "find_slot_ms_p50": pct(find, 0.5),
            "find_slot_ms_p90": pct(find, 0.9),
            "find_slot_ms_mean": round(statistics.fmean(find) * 1000, 2),
            "rebuilds": svc.calendar.rebuilds - rebuilds0,
            "replays": getattr(svc.calendar, "replays", None),
        }
        svc.close()
    print(json.dumps(doc))


def start_dt(t: int) -> datetime:
    return datetime.fromtimestamp(t, UTC)


if __name__ == "__main__":
    main()
