"""HTTP half of the find-slot benchmark: the same world behind a real server, timed end to end.

The bench's in-memory snapshot becomes a real SQLite database (topology imported through the topology
service, bookings loaded through the audited loader), shifted so the bench's start maps to the next hour;
a uvicorn process serves it (bench/uvicorn_server.py); POST /v1/find-slot is timed with distinct start
times so the answer cache never hits. Everything runs on loopback and stops by itself.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from slotbroker.bootstrap import build_services
from slotbroker.config import Settings
from slotbroker.demo.bookings import BookedAmount, Booking
from slotbroker.domain.topology import ProviderNode, Topology
from slotbroker.engine import Snapshot
from slotbroker.services.access.tokens import Role
from slotbroker.services.inventory import demo_data
from slotbroker.store import migrate
from slotbroker.store.db import Database
from uvicorn_server import uvicorn_server


def topology_doc(snap: Snapshot) -> Topology:
    hosts_by_site: dict[str, list[ProviderNode]] = {}
    for h in snap.hosts:
        hosts_by_site.setdefault(h.site, []).append(
            ProviderNode.model_validate(
                {
                    "name": h.name,
                    "kind": "host",
                    "traits": sorted(h.traits),
                    "aggregates": sorted(h.aggregates),
                    "inventories": {
                        rc: inv.capacity for rc, inv in h.inventories.items() if inv.capacity > 0
                    },
                }
            )
        )
    sites = [
        ProviderNode.model_validate(
            {
                "name": s.name,
                "kind": "site",
                "location": {"lat": s.location[0], "lon": s.location[1]} if s.location else None,
                "children": hosts_by_site.get(s.name, []),
            }
        )
        for s in snap.sites
    ]
    return Topology.model_validate(
        {
            "providers": [{"name": "bench-region", "kind": "region", "children": sites}],
            "links": [
                {
                    "name": lk.name,
                    "endpoints": [lk.site_a, lk.site_b],
                    "bandwidth_gbps": lk.capacity_gbps,
                    "latency_ms": lk.latency_ms,
                }
                for lk in snap.links
            ],
            "facility_ports": [
                {"name": p.name, "site": p.site, "vlans": str(p.vlans), "bandwidth_gbps": p.capacity_gbps}
                for p in snap.ports
            ],
        }
    )


def bookings_of(snap: Snapshot, shift_s: int) -> list[Booking]:
    names = {h.id: h.name for h in snap.hosts} | {lk.id: lk.name for lk in snap.links}
    names |= {p.id: f"{p.site}/{p.name}" for p in snap.ports}
    out = []
    for i, row in enumerate(snap.allocations.rows()):
        amount = BookedAmount(names[row.provider_id], row.resource_class, row.amount, row.vlan_tag)
        out.append(Booking(f"bench-{i}", "bench", row.start_s + shift_s, row.end_s + shift_s, (amount,)))
    return out


@contextmanager
def served(snap: Snapshot, bench_t0: int, *, workers: int = 1) -> Iterator[tuple[str, str, int]]:
    """The bench world in a fresh SQLite database behind a uvicorn process (``workers`` of them):
    yields (base URL, admin token, shift in seconds from the bench's times to the server's)."""
    now = int(time.time())
    shift = (now - now % 3600 + 3600) - bench_t0
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        db = Database(url)
        migrate.upgrade(db.engine)
        svc = build_services(Settings(database_url=url), db)
        svc.topology.import_(topology_doc(snap))
        demo_data.load_bookings(db, bookings_of(snap, shift), now_s=now)
        token = svc.tokens.create(project="bench", role=Role.ADMIN)
        svc.close()
        with uvicorn_server(url, workers=workers) as (base, _):
            yield base, token, shift


def measure_http_p50(
    snap: Snapshot, requests: list[dict[str, Any]], bench_t0: int, *, warmup: int = 5
) -> float:
    """p50 in ms of POST /v1/find-slot over ``requests`` (dicts with ISO times relative to ``bench_t0``)."""
    with (
        served(snap, bench_t0) as (base, token, shift),
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http,
    ):
        timings = []
        for i, req in enumerate(shifted(requests, shift)):
            t = time.perf_counter()
            r = http.post("/v1/find-slot", json=req)
            elapsed = (time.perf_counter() - t) * 1000
            if r.status_code != 200:
                raise RuntimeError(f"find-slot answered {r.status_code}: {r.text[:300]}")
            if i >= warmup:
                timings.append(elapsed)
        return round(statistics.median(timings), 3)


def shifted(requests: list[dict[str, Any]], shift: int) -> list[dict[str, Any]]:
    from datetime import datetime

    out = []
    for req in requests:
        doc = dict(req)
        for key in ("earliest_start", "latest_end"):
            if key in doc:
                t = datetime.fromisoformat(str(doc[key]).replace("Z", "+00:00")).timestamp() + shift
                doc[key] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
        out.append(doc)
    return out
