"""The composition root: every adapter's services see the same settings.

The regression: the server once built ``OfferSettings(ttl_s=...)`` without ``before_end_notice_s``, so a
lease accepted from an offer over HTTP got the 3600 s default notice whatever
``SLOTBROKER_BEFORE_END_NOTICE_S`` said, while the CLI passed the setting.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fastapi.testclient import TestClient

from slotbroker.api.app import create_app
from slotbroker.bootstrap import build_services
from slotbroker.config import Settings
from slotbroker.services.access.tokens import Role, TokenService
from slotbroker.services.booking.lease_events import Sweep
from slotbroker.store.db import Database

HOUR = 3600
NOTICE_S = 900  # not the 3600 default


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def epoch(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def settings(db: Database) -> Settings:
    return Settings(
        database_url=db.url,
        migrate_on_start=False,
        rate_per_s=10_000,
        rate_burst=10_000,
        event_loop_interval_s=0,
        planner_workers=0,
        before_end_notice_s=NOTICE_S,
        offer_ttl_s=120,
    )


def test_a_lease_accepted_from_an_offer_over_http_gets_the_configured_notice(db: Database) -> None:
    app = create_app(settings(db), db=db)
    admin = {"Authorization": f"Bearer {TokenService(db).create(project='demo', role=Role.ADMIN, name='t')}"}
    with TestClient(app) as client:
        r = client.post("/v1/providers", json={"name": "nsite", "kind": "site"}, headers=admin)
        assert r.status_code == 201, r.text
        host = {
            "name": "nhost",
            "kind": "host",
            "parent_uuid": r.json()["uuid"],
            "inventories": {"VCPU": {"total": 8}},
        }
        r = client.post("/v1/providers", json=host, headers=admin)
        assert r.status_code == 201, r.text
        now = int(time.time())
        start = now - now % HOUR + 2 * HOUR
        request = {
            "components": [{"name": "vm", "resources": {"VCPU": 2}}],
            "earliest_start": iso(start),
            "latest_end": iso(start + 24 * HOUR),
            "duration": "PT4H",
        }
        r = client.post("/v1/offer-sets", json={"request": request, "max_offers": 1}, headers=admin)
        assert r.status_code == 201, r.text
        offer = r.json()["offers"][0]
        r = client.post(f"/v1/offers/{offer['id']}/accept", headers=admin)
        assert r.status_code == 200, r.text
        lease = client.get(f"/v1/leases/{r.json()['uuid']}", headers=admin).json()
    notice = [e for e in lease["events"] if e["kind"] == "before_end"]
    assert [epoch(e["due"]) for e in notice] == [epoch(lease["end"]) - NOTICE_S]


def test_every_service_reads_the_booking_settings_from_one_mapping(db: Database) -> None:
    configured = settings(db)
    svc = build_services(configured, db)
    try:
        assert svc.offers.settings.before_end_notice_s == NOTICE_S
        assert svc.offers.settings.ttl_s == configured.offer_ttl_s
        assert svc.leases.policy.before_end_notice_s == NOTICE_S
        assert svc.claims.policy == svc.leases.policy
        sweeps = [j for j in svc.lease_events.periodic if isinstance(j, Sweep)]
        assert [(j.read, j.act) for j in sweeps] == [(svc.offers.due_sets, svc.offers.expire_sets)]
        assert svc.planner.settings.enabled == configured.provisioners
    finally:
        svc.find_slot.shutdown()
