"""Find-slot over HTTP under load: closed-loop clients (each sends its next request when the last one
answered), 1, 4, 16 and 64 of them, every request distinct (its own start time: the answer cache never
hits), against one or two uvicorn worker processes on SQLite. Throughput must not fall as clients rise
(issue 18); p99 and errors are reported per level. Prints ONE JSON object.

``python bench/http_find_slot_load.py [--seconds 8] [--clients 1,4,16,64] [--workers 1,2]``
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import threading
import time
from typing import Any

import httpx

from find_slot import DAY, T0, bookings, headline, iso, topology
from http_find_slot import served, shifted
from slotbroker.engine import Snapshot


def documents(n: int) -> list[dict[str, Any]]:
    """``n`` distinct headline requests: starts a minute apart over the bench's first 20 days."""
    out = []
    for i in range(n):
        s = T0 + (i * 60) % (20 * DAY)
        doc = headline(s).model_dump(mode="json", exclude_defaults=True)
        doc["earliest_start"], doc["latest_end"] = iso(s), iso(s + 7 * DAY)
        out.append(doc)
    return out


def level(base: str, token: str, docs: list[dict[str, Any]], clients: int, seconds: float) -> dict[str, Any]:
    feed = itertools.cycle(docs)
    lock = threading.Lock()
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    def client() -> None:
        nonlocal errors
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
            while time.perf_counter() < stop:
                with lock:
                    doc = next(feed)
                t = time.perf_counter()
                try:
                    ok = http.post("/v1/find-slot", json=doc).status_code == 200
                except httpx.HTTPError:
                    ok = False
                ms = (time.perf_counter() - t) * 1000
                with lock:
                    latencies.append(ms)
                    errors += not ok

    began = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - began
    lat = sorted(latencies)
    return {
        "requests": len(lat),
        "per_s": round(len(lat) / wall, 1),
        "p50_ms": round(statistics.median(lat), 2) if lat else None,
        "p99_ms": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))], 2) if lat else None,
        "errors": errors,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--clients", default="1,4,16,64")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--bookings", type=int, default=100_000)
    args = ap.parse_args()
    hosts, sites, links, ports = topology()
    snap = Snapshot(hosts, sites, links, ports, bookings(hosts, links, ports, args.bookings))
    out: dict[str, Any] = {"bookings": args.bookings, "seconds_per_level": args.seconds, "workers": {}}
    for workers in [int(w) for w in args.workers.split(",")]:
        with served(snap, T0, workers=workers) as (base, token, shift):
            docs = shifted(documents(20_000), shift)
            level(base, token, docs[:50], 4, 2.0)  # warm every worker's calendar index
            levels = {
                str(c): level(base, token, docs, c, args.seconds) for c in map(int, args.clients.split(","))
            }
        one = levels[min(levels, key=int)]["per_s"] or 1
        for v in levels.values():
            v["vs_one_client"] = round(v["per_s"] / one, 2)
        out["workers"][str(workers)] = levels
    print(json.dumps(out))


if __name__ == "__main__":
    main()
