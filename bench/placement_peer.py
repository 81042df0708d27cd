"""Side-by-side benchmark: slotbroker vs OpenStack Placement on the same 1,000 providers, on loopback.

    python bench/placement_peer.py [--providers 1000] [--claims 400] [--concurrent-claims 1600]

* Placement: installed with pip into its own virtual environment (``--placement-venv``, default
  /tmp/placement-venv; ``pip install .[placement-bench]`` lists the same packages), configured with the
  ``noauth2`` auth strategy and PostgreSQL database ``placement_bench`` on 127.0.0.1 (dropped and
  created), served by gunicorn (``--workers`` processes, 4 threads each) on 127.0.0.1.
* slotbroker: PostgreSQL database ``slotbroker_bench`` (dropped and created), uvicorn with the same number
  of worker processes on 127.0.0.1.
* Both get 1,000 hosts with VCPU 64, MEMORY_MB 262144, DISK_GB 2000; every tenth also 4 GPUs (Placement
  ``VGPU``, slotbroker ``GPU_A100``).

Measured: allocation candidates (``resources=VCPU:8,MEMORY_MB:32768,DISK_GB:100``, limit 10, p50 over
sequential requests), sequential claims (Placement ``PUT /allocations/{consumer}``; slotbroker ``POST
/v1/claims`` with explicit items over an hour), and 16 concurrent clients claiming on 20 hot providers
(Placement's generation conflicts are retried by the client, as nova does). ``errors`` counts transport
errors, 5xx and claims that gave up; ``overbooked`` is slotbroker's audit query plus, for Placement,
providers whose usages exceed their inventories. Prints ONE JSON object. Every child process is stopped
at the end; the whole run is bounded by ``--deadline`` seconds.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid as uuidlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

PG = "postgres@127.0.0.1:5432"
HOT = 20
CLIENTS = 16
RESOURCES = {"VCPU": 8, "MEMORY_MB": 32768, "DISK_GB": 100}
CLAIM = {"VCPU": 1, "MEMORY_MB": 1024}  # small, so 20 hot hosts take thousands of claims
PLACEMENT_VERSION = "placement 1.39"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def recreate_db(name: str) -> None:
    import psycopg

    with psycopg.connect(f"postgresql://{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")


class Http:
    """A tiny keep-alive JSON client (http.client: far less CPU per call than httpx)."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.port, self.headers = port, headers
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self.headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                r = self.conn.getresponse()
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None)
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt:
                    raise
        raise AssertionError("unreachable")


def wait_up(
    port: int, path: str, headers: dict[str, str], proc: subprocess.Popen[bytes], limit: float
) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            status, _ = Http(port, headers).call("GET", path)
            if status < 500:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server on {port} did not answer within {limit} s")


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def p50(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


def timed(n: int, fn: Callable[[], None]) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def run_concurrent(n_total: int, worker: Callable[[int], tuple[int, int]]) -> tuple[float, int, int]:
    """Run ``worker(i)`` for i in range(n_total) on CLIENTS threads; (seconds, successes, errors)."""
    counter = iter(range(n_total))
    lock = threading.Lock()
    ok = err = 0

    def loop() -> None:
        nonlocal ok, err
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            s, e = worker(i)
            with lock:
                ok += s
                err += e

    threads = [threading.Thread(target=loop) for _ in range(CLIENTS)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return time.perf_counter() - t, ok, err


# -- Placement -----------------------------------------------------------------------------------------------


def ensure_placement(venv: Path) -> Path:
    py = venv / "bin" / "python"
    if (
        not (venv / "bin" / "gunicorn").exists()
        or subprocess.run([str(py), "-c", "import placement"], capture_output=True).returncode
    ):
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run(
            [
                str(venv / "bin" / "pip"),
                "install",
                "-q",
                "openstack-placement",
                "psycopg2-binary",
                "gunicorn",
            ],
            check=True,
            timeout=900,
            capture_output=True,
        )
    return venv


def start_placement(venv: Path, workers: int, tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    recreate_db("placement_bench")
    conf_dir = tmp / "placement"
    conf_dir.mkdir()
    (conf_dir / "placement.conf").write_text(
        "[DEFAULT]\ndebug = False\n[api]\nauth_strategy = noauth2\n"
        f"[placement_database]\nconnection = postgresql+psycopg2://{PG}/placement_bench\n"
        "max_pool_size = 20\nmax_overflow = 20\n"
    )
    env = {**os.environ, "OS_PLACEMENT_CONFIG_DIR": str(conf_dir)}
    subprocess.run(
        [
            str(venv / "bin" / "placement-manage"),
            "--config-file",
            str(conf_dir / "placement.conf"),
            "db",
            "sync",
        ],
        env=env,
        check=True,
        timeout=300,
        capture_output=True,
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            str(venv / "bin" / "gunicorn"),
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(workers),
            "--threads",
            "4",
            "--log-level",
            "warning",
            "placement.wsgi.api:application",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp / "placement.log", "wb"),  # noqa: SIM115 - closed with the process
        start_new_session=True,
    )
    return proc, port


def placement_headers() -> dict[str, str]:
    return {"X-Auth-Token": "admin", "OpenStack-API-Version": PLACEMENT_VERSION, "Accept": "application/json"}


def load_placement(port: int, hosts: list[tuple[str, str, bool]]) -> None:
    c = Http(port, placement_headers())
    for u, name, gpu in hosts:
        s, body = c.call("POST", "/resource_providers", {"name": name, "uuid": u})
        assert s in (200, 201), body
        inv = {"VCPU": {"total": 64}, "MEMORY_MB": {"total": 262144}, "DISK_GB": {"total": 2000}}
        if gpu:
            inv["VGPU"] = {"total": 4}
        s, body = c.call(
            "PUT",
            f"/resource_providers/{u}/inventories",
            {"resource_provider_generation": 0, "inventories": inv},
        )
        assert s == 200, body


def placement_claim(c: Http, rp: str, retries: int = 10) -> tuple[int, int]:
    """Nova's way: PUT the allocation, retry on a generation conflict. (successes, errors)."""
    consumer = str(uuidlib.uuid4())
    body = {
        "allocations": {rp: {"resources": CLAIM}},
        "project_id": "bench",
        "user_id": "bench",
        "consumer_generation": None,
        "consumer_type": "INSTANCE",  # required from microversion 1.38
    }
    for _ in range(retries):
        try:
            s, resp = c.call("PUT", f"/allocations/{consumer}", body)
        except OSError:
            return 0, 1
        if s == 204:
            return 1, 0
        if s == 409 and "concurrent" in json.dumps(resp):
            continue
        return 0, (1 if s >= 500 or s != 409 else 0)
    return 0, 1


def placement_overbooked(port: int, hosts: list[tuple[str, str, bool]]) -> int:
    c = Http(port, placement_headers())
    bad = 0
    for u, _, _ in hosts:
        _, usages = c.call("GET", f"/resource_providers/{u}/usages")
        _, inv = c.call("GET", f"/resource_providers/{u}/inventories")
        for rc, used in usages["usages"].items():
            i = inv["inventories"][rc]
            if used > (i["total"] - i["reserved"]) * i["allocation_ratio"]:
                bad += 1
    return bad


def bench_placement(
    args: argparse.Namespace, hosts: list[tuple[str, str, bool]], tmp: Path
) -> dict[str, Any]:
    venv = ensure_placement(Path(args.placement_venv))
    proc, port = start_placement(venv, args.workers, tmp)
    try:
        wait_up(port, "/", placement_headers(), proc, 60)
        load_placement(port, hosts)
        c = Http(port, placement_headers())
        q = "/allocation_candidates?limit=10&resources=" + ",".join(f"{k}:{v}" for k, v in RESOURCES.items())

        def cand() -> None:
            s, body = c.call("GET", q)
            if s != 200 or len(body["allocation_requests"]) != 10:
                raise RuntimeError(f"candidates answered {s}: {str(body)[:300]}")

        cand()
        cands = timed(args.candidate_samples, cand)
        errors = 0
        t = time.perf_counter()
        ok = 0
        for i in range(args.claims):
            s, e = placement_claim(c, hosts[HOT + i % (len(hosts) - HOT)][0])
            ok, errors = ok + s, errors + e
        seq = ok / (time.perf_counter() - t)
        clients = [Http(port, placement_headers()) for _ in range(CLIENTS)]
        local = threading.local()
        ids = iter(range(10**9))
        lock = threading.Lock()

        def work(i: int) -> tuple[int, int]:
            if not hasattr(local, "c"):
                with lock:
                    local.c = clients[next(ids)]
            return placement_claim(local.c, hosts[i % HOT][0])

        secs, ok_c, err_c = run_concurrent(args.concurrent_claims, work)
        return {
            "placement_candidates_p50_ms": p50(cands),
            "placement_claims_per_s": round(seq, 1),
            "placement_concurrent_claims_per_s": round(ok_c / secs, 1),
            "placement_errors": errors + err_c,
            "placement_overbooked": placement_overbooked(port, hosts),
            "placement_version": subprocess.run(
                [
                    str(venv / "bin" / "python"),
                    "-c",
                    "import importlib.metadata as m;print(m.version('openstack-placement'))",
                ],
                capture_output=True,
                text=True,
            ).stdout.strip(),
        }
    finally:
        stop(proc)


# -- slotbroker ----------------------------------------------------------------------------------------------


def load_slotbroker(url: str, hosts: list[tuple[str, str, bool]]) -> str:
    from slotbroker.bootstrap import build_services
    from slotbroker.config import Settings
    from slotbroker.domain.providers import ProviderKind
    from slotbroker.domain.resource_classes import device_description
    from slotbroker.services.access.tokens import Role
    from slotbroker.store import migrate
    from slotbroker.store.db import Database
    from slotbroker.store.models import InventoryRow, ProviderRow
    from slotbroker.store.unit_of_work import UnitOfWork

    db = Database(url)
    migrate.upgrade(db.engine)
    with UnitOfWork(db) as uow:  # bulk rows: the inventory API would take minutes for 1,000 providers
        if uow.catalog.resource_class("GPU_A100") is None:
            uow.catalog.add_resource_class("GPU_A100", "device", device_description("GPU_A100"))
        site = ProviderRow(uuid=str(uuidlib.uuid4()), name="BENCH", kind=ProviderKind.SITE)
        uow.session.add(site)
        uow.session.flush()
        for u, name, gpu in hosts:
            p = ProviderRow(uuid=u, name=name, kind=ProviderKind.HOST, parent_id=site.id)
            uow.session.add(p)
            uow.session.flush()
            inv = {"VCPU": 64, "MEMORY_MB": 262144, "DISK_GB": 2000, **({"GPU_A100": 4} if gpu else {})}
            for rc, total in inv.items():
                uow.session.add(
                    InventoryRow(provider_id=p.id, resource_class=rc, total=total, max_unit=total)
                )
        uow.calendar.bump()
        uow.commit()
    svc = build_services(Settings(database_url=url), db)
    token = svc.tokens.create(project="bench", role=Role.ADMIN, name="bench")
    svc.close()
    return token


def overbooked_slotbroker(url: str) -> int:
    from slotbroker.store.db import Database
    from slotbroker.store.unit_of_work import UnitOfWork

    db = Database(url)
    with UnitOfWork(db, readonly=True) as uow:
        n = len(uow.allocations.overbooked()) + len(uow.allocations.vlan_clashes())
    db.dispose()
    return n


def bench_slotbroker(
    args: argparse.Namespace, hosts: list[tuple[str, str, bool]], tmp: Path
) -> dict[str, Any]:
    recreate_db("slotbroker_bench")
    url = f"postgresql+psycopg://{PG}/slotbroker_bench"
    token = load_slotbroker(url, hosts)
    port = free_port()
    env = {
        **os.environ,
        "SLOTBROKER_DATABASE_URL": url,
        "SLOTBROKER_RATE_PER_S": "1000000",
        "SLOTBROKER_RATE_BURST": "1000000",
        "SLOTBROKER_MAX_IN_FLIGHT": "1024",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "--http",
            "slotbroker.api.server:HttpTools",
            "--loop",
            "uvloop",
            "slotbroker.api.app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp / "slotbroker.log", "wb"),  # noqa: SIM115 - closed with the process
        start_new_session=True,
    )
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    try:
        wait_up(port, "/v1/health", headers, proc, 60)
        c = Http(port, headers)
        q = "/v1/allocation-candidates?limit=10&resources=" + ",".join(
            f"{k}:{v}" for k, v in RESOURCES.items()
        )

        def cand() -> None:
            s, body = c.call("GET", q)
            if s != 200 or len(body["allocation_requests"]) != 10:
                raise RuntimeError(f"candidates answered {s}: {str(body)[:300]}")

        for _ in range(2 * args.workers + 2):  # every worker builds its calendar index once
            cand()
        cands = timed(args.candidate_samples, cand)
        now = int(time.time())
        start, end = now + 3600, now + 7200

        def body(rp: str) -> dict[str, Any]:
            return {
                "items": [{"provider_uuid": rp, "resource_class": k, "amount": v} for k, v in CLAIM.items()],
                "start": start,
                "end": end,
                "consumer": {"kind": "lease"},
            }

        def claim(cl: Http, rp: str) -> tuple[int, int]:
            try:
                s, resp = cl.call("POST", "/v1/claims", body(rp))
            except OSError:
                return 0, 1
            if s == 201:
                return 1, 0
            return 0, (0 if s == 409 and resp.get("code") == "capacity_conflict" else 1)

        errors = ok = 0
        t = time.perf_counter()
        for i in range(args.claims):
            s, e = claim(c, hosts[HOT + i % (len(hosts) - HOT)][0])
            ok, errors = ok + s, errors + e
        seq = ok / (time.perf_counter() - t)
        local = threading.local()

        def work(i: int) -> tuple[int, int]:
            if not hasattr(local, "c"):
                local.c = Http(port, headers)
            return claim(local.c, hosts[i % HOT][0])

        secs, ok_c, err_c = run_concurrent(args.concurrent_claims, work)
        return {
            "candidates_p50_ms": p50(cands),
            "claims_per_s": round(seq, 1),
            "concurrent_claims_per_s": round(ok_c / secs, 1),
            "errors": errors + err_c,
            "overbooked": overbooked_slotbroker(url),
        }
    finally:
        stop(proc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--providers", type=int, default=1000)
    ap.add_argument("--claims", type=int, default=400)
    ap.add_argument("--concurrent-claims", type=int, default=1600)
    ap.add_argument("--candidate-samples", type=int, default=50)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--placement-venv", default="/tmp/placement-venv")
    ap.add_argument("--skip-placement", action="store_true")
    ap.add_argument("--deadline", type=float, default=1500.0, help="stop everything after this many seconds")
    args = ap.parse_args()
    timer = threading.Timer(args.deadline, lambda: os.kill(os.getpid(), signal.SIGTERM))
    timer.daemon = True
    timer.start()
    hosts = [(str(uuidlib.uuid4()), f"bench-{i:04d}", i % 10 == 0) for i in range(args.providers)]
    out: dict[str, Any] = {"providers": args.providers, "workers": args.workers, "database": "postgresql"}
    tmp = Path(tempfile.mkdtemp(prefix="placement-peer-"))
    try:
        out.update(bench_slotbroker(args, hosts, tmp))
        placement: dict[str, Any] = {
            "placement_candidates_p50_ms": None,
            "placement_claims_per_s": None,
            "placement_concurrent_claims_per_s": None,
        }
        if args.skip_placement:
            placement["placement_unavailable"] = "skipped (--skip-placement)"
        else:
            try:
                placement = bench_placement(args, hosts, tmp)
            except Exception as exc:
                log = tmp / "placement.log"
                tail = log.read_text(errors="replace")[-400:] if log.exists() else ""
                placement["placement_unavailable"] = f"{type(exc).__name__}: {exc}"[:400] + (
                    f" | {tail}" if tail else ""
                )
        out.update(placement)
        if out.get("placement_candidates_p50_ms"):
            out["candidates_speedup"] = round(
                out["placement_candidates_p50_ms"] / out["candidates_p50_ms"], 1
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
