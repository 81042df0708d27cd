"""``JobAsap``, the "as soon as possible" job as a service: the lease made for a job the planner refuses is
cancelled again, and a replayed job id makes no new offers."""

from __future__ import annotations

import time
from typing import Any

import pytest

from slotbroker.bootstrap import Services, build_services
from slotbroker.config import Settings
from slotbroker.domain.errors import ValidationFailed
from slotbroker.domain.jobs import JobSpec, Workload
from slotbroker.domain.topology import Topology
from slotbroker.services.access.tokens import Role
from slotbroker.services.planner import Planner
from slotbroker.services.planner.provisioners.simulated import SimulatedProvisioner
from slotbroker.store.db import Database
from slotbroker.wire.jobs import JobOut
from slotbroker.wire.offers import OfferSetRequest

HOUR = 3600
TOPOLOGY: dict[str, Any] = {
    "providers": [
        {
            "name": "S1",
            "kind": "site",
            "children": [{"name": "h1", "kind": "host", "inventories": {"VCPU": 8}}],
        }
    ]
}


class RefusingPlanner(Planner):
    """Refuses every job after admitting its provisioner: what a job refused for its own reasons
    (a lease the caller may not use, a clashing id) looks like to the service."""

    def create(self, spec: JobSpec, *, project: str | None = None, role: Role | None = None) -> JobOut:
        raise ValidationFailed("refused", [])


def offer_set() -> OfferSetRequest:
    now = int(time.time())
    start = now - now % HOUR + 2 * HOUR
    return OfferSetRequest.model_validate(
        {
            "request": {
                "components": [{"name": "c", "resources": {"VCPU": 2}}],
                "earliest_start": start,
                "latest_end": start + 12 * HOUR,
                "duration": "PT1H",
            },
            "strategies": ["earliest"],
            "max_offers": 1,
        }
    )


def services(db: Database, planner: Planner) -> Services:
    settings = Settings(database_url=db.url, migrate_on_start=False, event_loop_interval_s=0)
    svc = build_services(settings, db, planner=planner)
    svc.topology.import_(Topology.model_validate(TOPOLOGY))
    return svc


def test_a_refused_job_gives_its_new_lease_back(db: Database) -> None:
    planner = RefusingPlanner(db, provisioners={"simulated": SimulatedProvisioner()})
    svc = services(db, planner)
    try:
        with pytest.raises(ValidationFailed):
            svc.job_asap.create(
                offer_set(),
                provisioner="simulated",
                workload=Workload(command=("true",)),
                project="alpha",
                visible="alpha",
            )
        leases = svc.leases.list(project="alpha")
        assert [lease.status for lease in leases.items] == ["CANCELLED"]
    finally:
        svc.find_slot.shutdown()


def test_a_replayed_job_id_makes_no_new_offers(db: Database) -> None:
    svc = services(db, Planner(db, provisioners={"simulated": SimulatedProvisioner()}))
    try:

        def ask() -> JobOut:
            return svc.job_asap.create(
                offer_set(),
                provisioner="simulated",
                workload=Workload(command=("true",)),
                job_id="j-1",
                project="alpha",
                visible="alpha",
            )

        first, again = ask(), ask()
        assert again.id == first.id == "j-1"
        assert again.lease_id == first.lease_id
        leases = svc.leases.list(project="alpha")
        assert len(leases.items) == 1
    finally:
        svc.find_slot.shutdown()
