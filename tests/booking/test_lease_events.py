"""The lease event loop across processes and replicas, on a real SQLite file and PostgreSQL.

* restart: a separate process runs the loop with an injected clock; it is SIGKILLed while it is inside
  an event's transaction (a hook that hangs), started again, killed again, and finished by a third run;
  every event fired exactly once, at the tick that committed it, and every transition happened once;
* two loops at once never fire an event twice (PostgreSQL: ``FOR UPDATE SKIP LOCKED``; SQLite:
  ``BEGIN IMMEDIATE``);
* the server runs the loop (and its periodic jobs) in its lifespan.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from slotbroker.api.app import create_app
from slotbroker.config import Settings
from slotbroker.domain.inventory import Inventory
from slotbroker.domain.providers import ProviderKind
from slotbroker.services.booking.claims import ClaimService
from slotbroker.services.booking.lease_events import LeaseEvent, LeaseEventLoop, LeaseHooks
from slotbroker.services.booking.leases import LeasePolicy, LeaseService
from slotbroker.services.booking.quotas import QuotaService
from slotbroker.services.inventory.service import InventoryService
from slotbroker.store.db import Database
from slotbroker.store.models import ConsumerRow, LeaseEventRow
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire import providers as cmd
from slotbroker.wire.leases import CreateLease, LeaseItemSpec

T0 = 1_900_000_000
NOW = T0 - 1000

CHILD = textwrap.dedent(
    """
    import json, sys, time
    from slotbroker.services.booking.claims import ClaimService
    from slotbroker.services.booking.lease_events import LeaseEventLoop, LeaseHooks
    from slotbroker.store.db import Database

    url, block, *times = sys.argv[1:]
    db = Database(url)
    hooks = LeaseHooks()
    if block != "-":
        def hang(uow, event):
            print("blocking", event.kind, event.lease_id, flush=True)
            time.sleep(120)
        hooks.on_event(block, hang)
    loop = LeaseEventLoop(db, ClaimService(db), hooks)
    for t in times:
        n = loop.tick(int(t))
        print("tick", t, n, json.dumps(loop.fired), flush=True)
        time.sleep(0.1)
    print("done", flush=True)
    """
)


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def setup_leases(db: Database, n: int) -> tuple[LeaseService, list[str]]:
    site = InventoryService(db).create_provider(cmd.CreateProvider(name="esite", kind=ProviderKind.SITE))
    host = InventoryService(db).create_provider(
        cmd.CreateProvider(
            name="ehost",
            kind=ProviderKind.HOST,
            parent_uuid=site.uuid,
            inventories={"VCPU": Inventory(total=1000)},
        )
    )
    claims = ClaimService(db, clock=lambda: NOW)
    leases = LeaseService(
        db, claims, QuotaService(db), policy=LeasePolicy(before_end_notice_s=30), clock=lambda: NOW
    )
    ids = []
    for i in range(n):
        body = CreateLease(
            start=at(T0 + 10 * i),
            end=at(T0 + 100 + 10 * i),
            items=[LeaseItemSpec(provider_uuid=host.uuid, resource_class="VCPU", amount=1)],
        )
        ids.append(leases.create(body, project="sci").id)
    return leases, ids


def fired(db: Database) -> dict[str, list[tuple[str, int | None]]]:
    """Per lease: (kind, fired at epoch s) of each scheduled event."""
    out: dict[str, list[tuple[str, int | None]]] = {}
    with UnitOfWork(db, readonly=True) as uow:
        rows = uow.session.execute(
            select(ConsumerRow.uuid, LeaseEventRow.kind, LeaseEventRow.fired_at)
            .join(ConsumerRow, ConsumerRow.id == LeaseEventRow.consumer_id)
            .order_by(LeaseEventRow.id)
        ).all()
    for uuid, kind, when in rows:
        out.setdefault(uuid, []).append((kind, None if when is None else int(when.timestamp())))
    return out


def run_child(tmp_path: Path, url: str, block: str, *times: int) -> list[str]:
    """Run the loop in another process; if ``block`` names a kind, SIGKILL it inside that event's
    transaction. The lines it printed."""
    script = tmp_path / "loop_child.py"
    script.write_text(CHILD)
    proc = subprocess.Popen(
        [sys.executable, str(script), url, block, *map(str, times)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 30
    for line in proc.stdout:
        lines.append(line.strip())
        if line.startswith("blocking"):
            os.kill(proc.pid, signal.SIGKILL)
            break
        assert time.monotonic() < deadline, lines
    proc.wait(timeout=30)
    if block == "-":
        assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
        assert lines[-1] == "done"
    else:
        assert proc.returncode == -signal.SIGKILL, lines
    return lines


def test_restart_between_events_fires_each_exactly_once(db: Database, tmp_path: Path) -> None:
    leases, ids = setup_leases(db, 3)  # [T0, T0+100), [T0+10, T0+110), [T0+20, T0+120); notice 30 s
    # Run 1: the starts fire at T0+20; killed inside the first before_end (due T0+70).
    out = run_child(tmp_path, db.url, "before_end", T0 + 20, T0 + 75)
    assert out[0].startswith(f"tick {T0 + 20} 3")
    assert out[-1].startswith("blocking before_end")
    state = fired(db)
    assert all(state[i] == [("start", T0 + 20), ("before_end", None), ("end", None)] for i in ids)
    assert {leases.get(i, project=None).status for i in ids} == {"ACTIVE"}
    # Run 2: the notices fire at T0+95; killed inside the first end's transaction.
    out = run_child(tmp_path, db.url, "end", T0 + 95, T0 + 200)
    assert out[0].startswith(f"tick {T0 + 95} 3")
    assert out[-1].startswith("blocking end")
    state = fired(db)
    assert all(state[i] == [("start", T0 + 20), ("before_end", T0 + 95), ("end", None)] for i in ids)
    first = leases.get(ids[0], project=None)
    assert first.status == "ACTIVE"  # the killed end transaction left nothing behind
    assert [(it.start, it.end) for it in first.items] == [(at(T0), at(T0 + 100))]
    # Run 3: the ends fire; later ticks find nothing.
    out = run_child(tmp_path, db.url, "-", T0 + 200, T0 + 200, T0 + 300)
    assert sum(int(line.split()[2]) for line in out if line.startswith("tick")) == 3
    state = fired(db)
    assert all(state[i] == [("start", T0 + 20), ("before_end", T0 + 95), ("end", T0 + 200)] for i in ids)
    for i in ids:
        view = leases.get(i, project=None)
        assert view.status == "ENDED"
        assert [t.status for t in view.transitions] == ["PENDING", "ACTIVE", "ENDED"]
        assert len(view.notices) == 1


def test_two_loops_never_fire_an_event_twice(db: Database) -> None:
    _, ids = setup_leases(db, 30)
    calls: list[tuple[str, str]] = []
    lock = threading.Lock()

    def hook(uow: UnitOfWork, event: LeaseEvent) -> None:
        time.sleep(0.002)  # widen the window in which the other loop could collide
        with lock:
            calls.append((event.lease_id, event.kind))

    hooks = LeaseHooks()
    for kind in ("start", "before_end", "end"):
        hooks.on_event(kind, hook)
    loops = [LeaseEventLoop(db, ClaimService(db), hooks) for _ in range(2)]
    barrier = threading.Barrier(2)
    counts: list[int] = []

    def run(loop: LeaseEventLoop) -> None:
        barrier.wait()
        counts.append(loop.tick(T0 + 1000))

    threads = [threading.Thread(target=run, args=(loop,)) for loop in loops]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(calls) == len(set(calls)) == 90
    assert sum(counts) == 90
    assert sum(loop.fired.total() for loop in loops) == 90
    assert all(kind_time[1] == T0 + 1000 for events in fired(db).values() for kind_time in events)
    assert set(fired(db)) == set(ids)


def test_server_runs_the_loop_and_periodic_jobs(db: Database) -> None:
    settings = Settings(
        database_url=db.url,
        migrate_on_start=False,
        rate_per_s=10_000,
        rate_burst=10_000,
        event_loop_interval_s=0.05,
    )
    app = create_app(settings, db=db)
    ticks: list[int] = []
    app.state.services.lease_events.periodic.append(ticks.append)
    site = InventoryService(db).create_provider(cmd.CreateProvider(name="wsite", kind=ProviderKind.SITE))
    host = InventoryService(db).create_provider(
        cmd.CreateProvider(
            name="whost",
            kind=ProviderKind.HOST,
            parent_uuid=site.uuid,
            inventories={"VCPU": Inventory(total=8)},
        )
    )
    now = int(time.time())
    body = CreateLease(
        start=at(now + 1),
        end=at(now + 600),
        items=[LeaseItemSpec(provider_uuid=host.uuid, resource_class="VCPU", amount=1)],
    )
    lease = app.state.services.leases.create(body, project="sci")
    assert lease.status == "PENDING"
    with TestClient(app):
        assert app.state.services.lease_events.running
        deadline = time.monotonic() + 10
        while app.state.services.leases.get(lease.id, project=None).status != "ACTIVE":
            assert time.monotonic() < deadline, "the server's loop did not start the lease"
            time.sleep(0.05)
        # the periodic jobs run at every tick, not once: wait for a second one (the lease may have
        # started at the first tick, its start being at most a second away)
        while len(ticks) < 2:
            assert time.monotonic() < deadline, (
                f"the server's loop ran its periodic jobs {len(ticks)} time(s)"
            )
            time.sleep(0.05)
    assert not app.state.services.lease_events.running
    seen = len(ticks)
    time.sleep(0.2)
    assert len(ticks) == seen, "the periodic jobs ran after the server stopped"
