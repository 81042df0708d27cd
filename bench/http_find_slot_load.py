"""Find-slot over HTTP under load (issue 18): closed-loop clients (each connection sends its next request
when the last one answered), 1, 4, 16 and 64 of them, every request a distinct body (its own start, duration
and sizes, so the answer cache never hits), against one or two uvicorn worker processes, on SQLite and on
PostgreSQL, 1k hosts / 100k bookings. Prints ONE JSON object: per backend x workers x clients, requests/s,
p50/p95/p99 ms, errors (non-2xx and socket errors), and the CPU the server and the load generator took.

The load generator is ``wrk`` (bench/find_slot_load.lua). One worker is pinned to every core but the last
and wrk to the last (``taskset``), so one worker's figure is the server's alone; two workers get every
core and wrk runs unpinned beside them (it takes 5-11% of a core), so their figure is what two workers make
of the machine. Each level reports the CPU both took (``server_cpu_ms_per_answer``, ``generator_cpu_pct``).
The server is bench/uvicorn_server.py's.
Without ``wrk`` a pure-Python generator (threads in this process) stands in; ``"generator"`` says which
ran, since Python client threads take much of a core themselves and blur the figures.

``python bench/http_find_slot_load.py [--seconds 8] [--clients 1,4,16,64] [--workers 1,2]
[--backends sqlite,postgres] [--bookings 100000]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from find_slot import DAY, T0, bookings, iso, topology
from http_find_slot import bookings_of, topology_doc
from slotbroker.bootstrap import build_services
from slotbroker.config import Settings
from slotbroker.engine import Snapshot
from slotbroker.services.access.tokens import Role
from slotbroker.services.inventory import demo_data
from slotbroker.store import migrate
from slotbroker.store.db import Database
from uvicorn_server import taskset, uvicorn_server

HERE = Path(__file__).resolve().parent
PG_BASE = os.environ.get("SLOTBROKER_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CORES = os.cpu_count() or 1
DURATIONS = ("PT2H", "PT3H", "PT4H", "PT6H")
WORKER_VCPUS = (8, 12, 16)
STARTS = 20 * DAY // 60  # a minute apart over the bench's first 20 days


def document(i: int, shift: int) -> dict[str, Any]:
    """The ``i``-th distinct request (mixed radix over start, duration and size): the bench's headline shape
    (4 components with a GPU, a same-site pair and a link), ``shift`` seconds after the bench's times."""
    start = T0 + shift + (i % STARTS) * 60
    i //= STARTS
    duration = DURATIONS[i % len(DURATIONS)]
    vcpu = WORKER_VCPUS[(i // len(DURATIONS)) % len(WORKER_VCPUS)]
    return {
        "components": [
            {"name": "gpu", "resources": {"VCPU": 8, "MEMORY_MB": 32768, "GPU_A30": 2}},
            {"name": "worker", "count": 2, "resources": {"VCPU": vcpu, "MEMORY_MB": 65536}},
            {"name": "store", "resources": {"VCPU": 4, "MEMORY_MB": 16384}},
            {"name": "edge", "resources": {"VCPU": 2, "MEMORY_MB": 4096}},
        ],
        "groups": [{"kind": "same_site", "components": ["worker", "store"]}],
        "links": [{"a": "gpu", "b": "worker", "bandwidth_gbps": 10, "max_latency_ms": 60}],
        "earliest_start": iso(start),
        "latest_end": iso(start + 7 * DAY),
        "duration": duration,
        "limit": 1,
    }


# -- the world: a database with the bench's topology and bookings ---------------------------------------
@contextmanager
def world(backend: str, snap: Snapshot, tmp: Path) -> Iterator[tuple[str, str, int]]:
    """A fresh database (SQLite file, or a PostgreSQL schema of its own so the tests' tables in the same
    database are untouched) holding the bench world: yields (URL, admin token, shift in seconds)."""
    now = int(time.time())
    shift = (now - now % 3600 + 3600) - T0
    schema = f"bench_http_{os.getpid()}"
    admin = None
    if backend == "sqlite":
        url = f"sqlite:///{tmp / 'bench.db'}"
    else:
        admin = create_engine(PG_BASE)
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        url = f"{PG_BASE}{'&' if '?' in PG_BASE else '?'}options=-csearch_path%3D{schema}"
    try:
        db = Database(url)
        migrate.upgrade(db.engine)
        svc = build_services(Settings(database_url=url), db)
        svc.topology.import_(topology_doc(snap))
        demo_data.load_bookings(db, bookings_of(snap, shift), now_s=now)
        token = svc.tokens.create(project="bench", role=Role.ADMIN)
        svc.close()
        yield url, token, shift
    finally:
        if admin is not None:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            admin.dispose()


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (uvicorn's worker processes)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
        out.append(p)
    return out


def cpu_seconds(pid: int) -> float:
    """User+system CPU of ``pid`` and its live descendants."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, ValueError):
            continue
    return total


def service_totals(pid: int, split_dir: Path) -> tuple[float, int]:
    """With ``--split``: CPU seconds spent inside ``FindSlotService.answer`` and answers given, summed over
    the server's processes (bench/probe/sitecustomize.py writes them on SIGUSR1)."""
    for f in split_dir.glob("*.json"):
        f.unlink()
    pids = process_tree(pid)
    for p in pids:
        os.kill(p, signal.SIGUSR1)
    deadline = time.monotonic() + 5
    while len(list(split_dir.glob("*.json"))) < len(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.05)  # a file seen may still be being written
    found = [json.loads(f.read_text()) for f in split_dir.glob("*.json")]
    return sum(t["service_cpu_s"] for t in found), sum(t["answers"] for t in found)


# -- load generators -------------------------------------------------------------------------------------
def wrk_level(
    base: str, token: str, bodies: Path, offset: int, clients: int, seconds: float, cpus: str | None
) -> dict[str, Any]:
    env = {
        **os.environ,
        "FIND_SLOT_BODIES": str(bodies),
        "FIND_SLOT_TOKEN": token,
        "FIND_SLOT_OFFSET": str(offset),
        "FIND_SLOT_THREADS": "1",
    }
    command = [*taskset(cpus), "wrk", "-t1", f"-c{clients}", f"-d{round(seconds)}s", "--timeout", "30s"]
    command += ["-s", str(HERE / "find_slot_load.lua"), base]
    before = os.times()
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    after = os.times()
    line = next(x for x in out.splitlines() if x.startswith("WRK_JSON "))
    r = json.loads(line.removeprefix("WRK_JSON "))
    wall = r["duration_us"] / 1e6
    errors = sum(r["socket_errors"].values()) + sum(n for code, n in r["statuses"].items() if code != "200")
    return {
        "requests": r["requests"],
        "per_s": round(r["requests"] / wall, 1),
        "p50_ms": r["latency_us"]["p50"] / 1000,
        "p95_ms": r["latency_us"]["p95"] / 1000,
        "p99_ms": r["latency_us"]["p99"] / 1000,
        "max_ms": r["latency_us"]["max"] / 1000,
        "errors": errors,
        "statuses": r["statuses"],
        "socket_errors": r["socket_errors"],
        "cached": r["cached"],
        "sent": r["sent"],
        "generator_cpu_s": round(
            (after.children_user + after.children_system) - (before.children_user + before.children_system), 2
        ),
        "wall_s": round(wall, 2),
    }


def python_level(
    base: str, token: str, docs: list[dict[str, Any]], clients: int, seconds: float
) -> dict[str, Any]:
    """The fallback without wrk: ``clients`` threads of this process, one httpx client each."""
    feed = iter(docs)
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

    before = time.process_time()
    began = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - began
    lat = sorted(latencies)

    def pct(q: float) -> float | None:
        return round(lat[min(len(lat) - 1, int(q * len(lat)))], 2) if lat else None

    return {
        "requests": len(lat),
        "per_s": round(len(lat) / wall, 1),
        "p50_ms": round(statistics.median(lat), 2) if lat else None,
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "errors": errors,
        "generator_cpu_s": round(time.process_time() - before, 2),
        "wall_s": round(wall, 2),
    }


def warm(
    base: str, token: str, docs: list[dict[str, Any]], bodies: Path, workers: int, use_wrk: bool
) -> None:
    """Let every worker process build its calendar index before anything is timed. Each worker builds
    its own on its first request, and which worker a connection lands on is the kernel's choice, so one
    keep-alive connection would warm one worker only: many connections at once, on bodies (the last
    ``WARM_BODIES``) that no measured level sends."""
    first = len(docs) - WARM_BODIES
    if use_wrk:
        for _ in range(2):  # a cold worker may take seconds: the second pass meets them all warm
            wrk_level(base, token, bodies, first, 16 * workers, 4, None)
        return
    python_level(base, token, docs[first:], 16 * workers, 8)


WARM_BODIES = 20_000


def levels(
    base: str,
    pid: int,
    token: str,
    docs: list[dict[str, Any]],
    bodies: Path,
    offset: int,
    args: Any,
    generator_cpus: str | None,
) -> tuple[dict[str, Any], int]:
    """Every client level against one running server, each on bodies no earlier level sent."""
    out: dict[str, Any] = {}
    for clients in map(int, args.clients.split(",")):
        service0 = service_totals(pid, args.split_dir) if args.split_dir else (0.0, 0)
        cpu0 = cpu_seconds(pid)
        if args.use_wrk:
            r = wrk_level(base, token, bodies, offset, clients, args.seconds, generator_cpus)
            offset += r["sent"]
        else:
            r = python_level(base, token, docs[offset:], clients, args.seconds)
            offset += r["requests"] + clients
        r["server_cpu_s"] = round(cpu_seconds(pid) - cpu0, 2)
        r["server_cpu_ms_per_answer"] = round(1000 * r["server_cpu_s"] / max(1, r["requests"]), 2)
        r["generator_cpu_pct"] = round(100 * r["generator_cpu_s"] / max(r["wall_s"], 1e-9), 1)
        if args.split_dir:
            service1 = service_totals(pid, args.split_dir)
            answers = max(1, service1[1] - service0[1])
            r["service_cpu_ms_per_answer"] = round(1000 * (service1[0] - service0[0]) / answers, 2)
            r["http_cpu_ms_per_answer"] = round(
                r["server_cpu_ms_per_answer"] - r["service_cpu_ms_per_answer"], 2
            )
        out[str(clients)] = r
    one = out[min(out, key=int)]["per_s"] or 1
    for v in out.values():
        v["vs_one_client"] = round(v["per_s"] / one, 2)
    return out, offset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--clients", default="1,4,16,64")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--bookings", type=int, default=100_000)
    ap.add_argument("--bodies", type=int, default=300_000, help="distinct request bodies to cycle through")
    ap.add_argument("--python-generator", action="store_true", help="use Python threads even with wrk")
    ap.add_argument(
        "--split",
        action="store_true",
        help="also report the CPU per answer spent inside FindSlotService.answer and outside it (the HTTP "
        "layer), from a probe on the servers' path (bench/probe/sitecustomize.py)",
    )
    ap.add_argument(
        "--base-src",
        type=Path,
        help="also serve slotbroker from this src directory (a checkout of the base commit), alternating "
        "with this tree's on the same database: before and after in one run",
    )
    args = ap.parse_args()
    args.use_wrk = shutil.which("wrk") is not None and not args.python_generator
    # One worker: the server on every core but the last, the generator alone on that one, so the figure is
    # the server's. More workers: every core for the server and the generator unpinned beside it (wrk took
    # 5-11% of a core at ~250-500 answers/s), so the figure is what the workers make of the whole machine.
    generator_cpus = str(CORES - 1) if CORES > 1 else None
    single_worker_cpus = f"0-{CORES - 2}" if CORES > 1 else None
    trees: dict[str, Path | None] = {"head": None}
    if args.base_src:
        trees = {"base": args.base_src.resolve(), "head": None}
    hosts, sites, links, ports = topology()
    snap = Snapshot(hosts, sites, links, ports, bookings(hosts, links, ports, args.bookings))
    out: dict[str, Any] = {
        "generator": "wrk -t1 (bench/find_slot_load.lua)" if args.use_wrk else "python threads (httpx)",
        "cores": CORES,
        "generator_cpus": {"1": generator_cpus, "2": "any (shared with the workers)"}
        if args.use_wrk
        else "any (threads of this process)",
        "server_cpus": {"1": single_worker_cpus, "2": "all"},
        "hosts": len(hosts),
        "bookings": args.bookings,
        "seconds_per_level": args.seconds,
        "trees": {k: str(v or "this checkout") for k, v in trees.items()},
        "backends": {},
    }
    for backend in args.backends.split(","):
        with (
            tempfile.TemporaryDirectory() as tmpdir,
            world(backend, snap, Path(tmpdir)) as (url, token, shift),
        ):
            bodies = Path(tmpdir) / "bodies.jsonl"
            docs = [document(i, shift) for i in range(args.bodies)]
            bodies.write_text("".join(json.dumps(d, separators=(",", ":")) + "\n" for d in docs))
            offset = 0
            per_workers: dict[str, Any] = {}
            args.split_dir = Path(tmpdir) / "split" if args.split else None
            probe = {}
            if args.split_dir:
                args.split_dir.mkdir()
                probe = {"SLOTBROKER_BENCH_SPLIT_DIR": str(args.split_dir)}
            for workers in map(int, args.workers.split(",")):
                cpus, gen_cpus = (single_worker_cpus, generator_cpus) if workers == 1 else (None, None)
                for tree, src in trees.items():
                    if args.split_dir:  # the probe first on the path, then the tree served, then ours
                        path = [HERE / "probe", *([src] if src else []), os.environ.get("PYTHONPATH", "")]
                        probe["PYTHONPATH"] = os.pathsep.join(map(str, path))
                    with uvicorn_server(url, workers=workers, cpus=cpus, src=src, env=probe) as (base, pid):
                        warm(base, token, docs, bodies, workers, args.use_wrk)
                        result, offset = levels(base, pid, token, docs, bodies, offset, args, gen_cpus)
                    if len(trees) == 1:
                        per_workers[str(workers)] = result
                    else:
                        per_workers.setdefault(str(workers), {})[tree] = result
            if offset > len(docs) - WARM_BODIES:
                out.setdefault("warnings", []).append(f"{backend}: bodies repeated; raise --bodies")
            out["backends"][backend] = per_workers
    print(json.dumps(out))


if __name__ == "__main__":
    main()
