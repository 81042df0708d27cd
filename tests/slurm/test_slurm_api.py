"""Over HTTP: ``POST /v1/jobs`` for the ``slurm`` provisioner refuses a workload it could never run with a
422 naming the field, before any offer, lease or job is written (no daemons needed: nothing reaches
Slurm), and its role is ``operator``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from planner_support import fast_settings, make_site
from slotbroker.api.app import create_app
from slotbroker.config import Settings
from slotbroker.services.access.tokens import Role, TokenService
from slotbroker.services.planner.provisioners.slurm import SlurmProvisioner
from slotbroker.services.planner.provisioners.slurm_config import SlurmConfig
from slotbroker.services.planner.service import Planner
from slotbroker.store import migrate
from slotbroker.store.db import Database
from slotbroker.store.unit_of_work import UnitOfWork

HOUR = 3600


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, Database, dict[str, dict[str, str]]]]:
    db = Database(f"sqlite:///{tmp_path}/x.db")
    migrate.upgrade(db.engine)
    make_site(db, hosts=("n1", "n2"), vcpu=4)
    slurm = SlurmProvisioner(SlurmConfig(spool=str(tmp_path / "spool"), bin_dir="/nonexistent", sync_s=0))
    planner = Planner(db, settings=fast_settings(), provisioners={"slurm": slurm})
    settings = Settings(
        database_url=db.url, migrate_on_start=False, event_loop_interval_s=0, planner_workers=0
    )
    app = create_app(settings, db=db, planner=planner)
    tokens = TokenService(db)
    heads = {
        role.value: {"Authorization": f"Bearer {tokens.create(project='alpha', role=role, name=role.value)}"}
        for role in (Role.USER, Role.OPERATOR)
    }
    with TestClient(app) as client:
        yield client, db, heads
    db.dispose()


def asap(workload: dict[str, Any]) -> dict[str, Any]:
    now = int(time.time())
    start = now - now % HOUR + 2 * HOUR
    request = {
        "components": [{"name": "c", "resources": {"VCPU": 2}}],
        "earliest_start": start,
        "latest_end": start + 12 * HOUR,
        "duration": "PT1H",
    }
    offer_set = {"request": request, "strategies": ["earliest"], "max_offers": 1}
    return {"provisioner": "slurm", "workload": workload, "offer_set": offer_set}


def written(db: Database) -> tuple[int, int]:
    with UnitOfWork(db, readonly=True) as uow:
        leases = uow.leases.newest(project=None, status=None, limit=10)
        jobs = uow.jobs.get("any")
    return len(leases), 0 if jobs is None else 1


def test_a_workload_slurm_could_never_run_is_a_422_and_nothing_is_written(api: Any) -> None:
    client, db, heads = api
    bad = {"command": ["true"], "env": {"SBATCH_RESERVATION": "other"}, "extra": {"nodes": 0}}
    r = client.post("/v1/jobs", json={**asap(bad), "id": "any"}, headers=heads["operator"])
    assert r.status_code == 422, r.text
    pointers = [e["pointer"] for e in r.json()["errors"]]
    assert pointers == ["/workload/extra/nodes", "/workload/env/SBATCH_RESERVATION"]
    assert written(db) == (0, 0)  # no offer accepted into a lease, no job


def test_slurm_needs_the_operator_role(api: Any) -> None:
    client, db, heads = api
    r = client.post("/v1/jobs", json=asap({"command": ["true"]}), headers=heads["user"])
    assert r.status_code == 403, r.text
    assert [e["pointer"] for e in r.json()["errors"]] == ["/provisioner"]
    assert written(db) == (0, 0)
