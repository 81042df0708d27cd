"""Names and id prefixes (issue 14): every ``{id}`` of leases, offer sets, offers and jobs takes the full
id, a unique prefix (``MIN_PREFIX`` characters or more) or a name, scoped to the caller's project."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from planner_support import fast_settings
from slotbroker.api.app import create_app
from slotbroker.config import Settings
from slotbroker.services.access.tokens import Role, TokenService
from slotbroker.services.names import MIN_PREFIX
from slotbroker.services.planner import Planner
from slotbroker.services.planner.provisioners.simulated import SimulatedConfig, SimulatedProvisioner
from slotbroker.store.db import Database

HOUR = 3600
TOPOLOGY = {
    "providers": [
        {
            "name": "SITEA",
            "kind": "site",
            "children": [
                {"name": f"a-h{i}", "kind": "host", "inventories": {"VCPU": 8, "MEMORY_MB": 8192}}
                for i in (1, 2, 3)
            ],
        }
    ]
}
SITE_B = {
    "name": "SITEB",
    "kind": "site",
    "children": [{"name": "b-h1", "kind": "host", "inventories": {"VCPU": 8, "MEMORY_MB": 8192}}],
}


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def ok(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


def headers(app: FastAPI, project: str, role: Role = Role.USER) -> dict[str, str]:
    secret = TokenService(app.state.services.db).create(project=project, role=role, name=f"t-{project}")
    return {"Authorization": f"Bearer {secret}"}


def request(t0: int, hours: int = 1) -> dict[str, Any]:
    return {
        "components": [
            {"name": "gpu", "resources": {"VCPU": 2, "MEMORY_MB": 1024}},
            {"name": "workers", "count": 2, "resources": {"VCPU": 1, "MEMORY_MB": 512}},
        ],
        "earliest_start": iso(t0),
        "latest_end": iso(t0 + 24 * HOUR),
        "duration": f"PT{hours}H",
    }


@pytest.fixture
def t0(client: TestClient, admin: dict[str, str]) -> int:
    ok(client.post("/v1/topology", json=TOPOLOGY, headers=admin))
    now = int(time.time())
    return now - now % HOUR + 2 * HOUR


def lease_body(client: TestClient, headers_: dict[str, str], t0: int, name: str, hour: int = 0) -> Any:
    host = ok(client.get("/v1/providers?name=a-h1", headers=headers_))["items"][0]["uuid"]
    body = {
        "name": name,
        "start": iso(t0 + hour * HOUR),
        "end": iso(t0 + (hour + 1) * HOUR),
        "items": [{"provider_uuid": host, "resource_class": "VCPU", "amount": 1}],
    }
    return ok(client.post("/v1/leases", json=body, headers=headers_), 201)


def test_a_lease_answers_to_its_id_a_prefix_and_its_name(
    client: TestClient, app: FastAPI, user: dict[str, str], t0: int
) -> None:
    lease = lease_body(client, user, t0, "gpu-run")
    upper, bare = lease["id"].upper(), lease["id"].replace("-", "")
    for ref in (lease["id"], lease["id"][:MIN_PREFIX], lease["id"][:13], "gpu-run", upper, upper[:8], bare):
        assert ok(client.get(f"/v1/leases/{ref}", headers=user))["id"] == lease["id"], ref
    # too short a prefix is no prefix: it reads like an unused id
    short = client.get(f"/v1/leases/{lease['id'][: MIN_PREFIX - 1]}", headers=user)
    assert short.status_code == 404
    ics = client.get("/v1/leases/gpu-run.ics", headers=user)
    assert ics.status_code == 200, ics.text
    assert ics.headers["content-type"].startswith("text/calendar")
    assert ics.text.count("BEGIN:VEVENT") == 1
    assert f"UID:{lease['id']}" in ics.text


def test_an_ambiguous_name_is_a_409_listing_the_candidates(
    client: TestClient, user: dict[str, str], t0: int
) -> None:
    one = lease_body(client, user, t0, "twin", hour=0)
    two = lease_body(client, user, t0, "twin", hour=1)
    r = client.get("/v1/leases/twin", headers=user)
    assert r.status_code == 409, r.text
    problem = r.json()
    assert problem["code"] == "ambiguous"
    assert sorted(problem["candidates"]) == sorted([one["id"], two["id"]])
    assert r.headers["content-type"].startswith("application/problem+json")
    # cancelling by an ambiguous name changes nothing
    assert client.post("/v1/leases/twin/cancel", headers=user).status_code == 409
    assert ok(client.get(f"/v1/leases/{one['id']}", headers=user))["status"] == "PENDING"


def test_another_projects_names_and_prefixes_read_like_unused_ones(
    client: TestClient, app: FastAPI, user: dict[str, str], t0: int
) -> None:
    theirs = lease_body(client, headers(app, "other"), t0, "secret-run")
    for ref, unused in (("secret-run", "never-used-name"), (theirs["id"][:8], "ffffffff")):
        seen = client.get(f"/v1/leases/{ref}", headers=user)
        nobody = client.get(f"/v1/leases/{unused}", headers=user)
        assert seen.status_code == nobody.status_code == 404
        assert seen.json()["detail"].replace(ref, "<id>") == nobody.json()["detail"].replace(unused, "<id>")
    # the same name in two projects is not ambiguous for either
    mine = lease_body(client, user, t0, "secret-run")
    assert ok(client.get("/v1/leases/secret-run", headers=user))["id"] == mine["id"]


def test_rename_a_lease_any_status(client: TestClient, user: dict[str, str], t0: int) -> None:
    lease = lease_body(client, user, t0, "first")
    got = ok(client.patch("/v1/leases/first", json={"generation": 0, "name": "second"}, headers=user))
    assert (got["name"], got["generation"], got["end"]) == ("second", 1, lease["end"])
    assert client.get("/v1/leases/first", headers=user).status_code == 404
    ok(client.post("/v1/leases/second/cancel", headers=user))
    now = ok(client.get("/v1/leases/second", headers=user))
    got = ok(
        client.patch("/v1/leases/second", json={"generation": now["generation"], "name": "x"}, headers=user)
    )
    assert (got["name"], got["status"]) == ("x", "CANCELLED")
    stale = client.patch("/v1/leases/x", json={"generation": 0, "name": "y"}, headers=user)
    assert stale.status_code == 409
    assert stale.json()["code"] == "concurrent_update"


def test_lease_list_is_newest_first_with_filters(client: TestClient, user: dict[str, str], t0: int) -> None:
    made = [lease_body(client, user, t0, f"l{i}", hour=i)["id"] for i in range(3)]
    ok(client.post(f"/v1/leases/{made[1]}/cancel", headers=user))
    assert [x["id"] for x in ok(client.get("/v1/leases", headers=user))["items"]] == made[::-1]
    live = ok(client.get("/v1/leases?status=PENDING", headers=user))["items"]
    assert [x["id"] for x in live] == [made[2], made[0]]
    window = ok(
        client.get("/v1/leases", params={"start": iso(t0 + HOUR), "end": iso(t0 + 3 * HOUR)}, headers=user)
    )
    assert [x["id"] for x in window["items"]] == [made[2], made[1]]


def test_lease_list_filters_by_name_or_id_prefix_and_by_site(
    client: TestClient, admin: dict[str, str], user: dict[str, str], t0: int
) -> None:
    """``name``: a case-blind prefix of the name or the id, taken literally (``%`` and ``_`` are no
    wildcards); ``site``: leases holding a host there. Both combine with the other filters and paging."""
    both = {"providers": [*TOPOLOGY["providers"], SITE_B]}
    ok(client.post("/v1/topology", json=both, headers=admin))
    a1 = lease_body(client, user, t0, "Exp-1")["id"]
    a2 = lease_body(client, user, t0, "exp_2", hour=1)["id"]
    other = ok(client.get("/v1/providers?name=b-h1", headers=user))["items"][0]["uuid"]
    b1 = ok(
        client.post(
            "/v1/leases",
            json={
                "name": "%wild",
                "start": iso(t0),
                "end": iso(t0 + HOUR),
                "items": [{"provider_uuid": other, "resource_class": "VCPU", "amount": 1}],
            },
            headers=user,
        ),
        201,
    )["id"]

    def ids(**params: Any) -> list[str]:
        return [x["id"] for x in ok(client.get("/v1/leases", params=params, headers=user))["items"]]

    assert ids(name="EXP") == [a2, a1]
    assert ids(name="exp_") == [a2]  # '_' is itself, not any character
    assert ids(name="exp%") == []  # '%' is itself, not any run
    assert ids(name="%w") == [b1]
    assert ids(name=b1[:8].upper()) == [b1]  # the id's prefix, any case
    assert ids(site="SITEA") == [a2, a1]
    assert ids(site="SITEB") == [b1]
    assert ids(site="NOWHERE") == []
    assert ids(site="SITEA", name="exp-") == [a1]
    assert ids(site="SITEA", start=iso(t0 + HOUR)) == [a2]
    first = ok(client.get("/v1/leases", params={"site": "SITEA", "limit": 1}, headers=user))
    assert [x["id"] for x in first["items"]] == [a2]
    rest = ids(site="SITEA", cursor=first["next_cursor"])
    assert rest == [a1]
    empty = client.get("/v1/leases", params={"name": ""}, headers=user)
    assert empty.status_code == 422  # as every query parameter the API refuses: a problem naming it
    assert empty.json()["errors"][0]["pointer"].endswith("name")


def test_offer_sets_take_names_and_the_lease_keeps_the_component_names(
    client: TestClient, user: dict[str, str], t0: int
) -> None:
    made = ok(
        client.post("/v1/offer-sets", json={"request": request(t0), "name": "exp-7"}, headers=user), 201
    )
    assert made["name"] == "exp-7"
    assert ok(client.get("/v1/offer-sets/exp-7", headers=user))["id"] == made["id"]
    renamed = ok(client.patch("/v1/offer-sets/exp-7", json={"name": "exp-8"}, headers=user))
    assert renamed["name"] == "exp-8"
    assert client.get("/v1/offer-sets/exp-7", headers=user).status_code == 404
    offer = made["offers"][0]
    assert ok(client.get(f"/v1/offers/{offer['id'][:MIN_PREFIX]}", headers=user))["id"] == offer["id"]
    accepted = ok(client.post(f"/v1/offers/{offer['id'][:10]}/accept", headers=user))
    lease = ok(client.get("/v1/leases/exp-8", headers=user))
    assert lease["id"] == accepted["uuid"]
    assert set(lease["placement"]) == {"gpu", "workers"}
    assert len(lease["placement"]["workers"]) == 2
    assert lease["placement"] == offer["placement"]
    held = {i["provider_name"] for i in lease["items"]}
    assert {h for hosts in lease["placement"].values() for h in hosts} <= held


def test_jobs_answer_to_a_prefix_and_their_name(db: Database) -> None:
    sim = SimulatedProvisioner(SimulatedConfig())
    planner = Planner(db, settings=fast_settings(workers=0), provisioners={"simulated": sim})
    settings = Settings(
        database_url=db.url,
        migrate_on_start=False,
        rate_per_s=10_000,
        rate_burst=10_000,
        event_loop_interval_s=0,
        planner_workers=0,
    )
    app = create_app(settings, db=db, planner=planner)
    with TestClient(app) as client:
        admin, user = headers(app, "ops", Role.ADMIN), headers(app, "science")
        ok(client.post("/v1/topology", json=TOPOLOGY, headers=admin))
        now = int(time.time())
        lease = lease_body(client, user, now - now % HOUR + 2 * HOUR, "for-jobs")
        made = []
        for i in range(2):
            body = {
                "id": f"job-abcdef-{i}",
                "name": f"train-{i}",
                "lease_id": lease["id"],
                "provisioner": "simulated",
                "workload": {"command": ["true"]},
            }
            made.append(ok(client.post("/v1/jobs", json=body, headers=user), 201)["id"])
        assert ok(client.get("/v1/jobs/train-1", headers=user))["id"] == made[1]
        assert ok(client.get("/v1/jobs/job-abcdef-0", headers=user))["id"] == made[0]
        r = client.get("/v1/jobs/job-abcdef", headers=user)  # a prefix of both
        assert r.status_code == 409, r.text
        assert sorted(r.json()["candidates"]) == sorted(made)
        assert ok(client.post("/v1/jobs/train-0/cancel", headers=user))["id"] == made[0]
        assert client.get("/v1/jobs/train-0", headers=headers(app, "other")).status_code == 404


def test_the_placement_follows_a_host_swap(
    client: TestClient, admin: dict[str, str], user: dict[str, str], t0: int
) -> None:
    req = request(t0)
    req["components"] = [{"name": "gpu", "resources": {"VCPU": 8}}]
    made = ok(client.post("/v1/offer-sets", json={"request": req, "max_offers": 1}, headers=user), 201)
    offer = made["offers"][0]
    lease = ok(client.post(f"/v1/offers/{offer['id']}/accept", headers=user))
    first = ok(client.get(f"/v1/leases/{lease['uuid']}", headers=user))
    (host,) = first["placement"]["gpu"]
    assert first["name"] == ""  # an unnamed set gives an unnamed lease (not "offer <uuid>")
    # fill that host where the lease is about to move
    uuid = ok(client.get(f"/v1/providers?name={host}", headers=user))["items"][0]["uuid"]
    body = {
        "start": iso(t0 + 5 * HOUR),
        "end": iso(t0 + 6 * HOUR),
        "items": [{"provider_uuid": uuid, "resource_class": "VCPU", "amount": 8}],
    }
    ok(client.post("/v1/leases", json=body, headers=user), 201)
    patch = {"generation": first["generation"], "start": iso(t0 + 5 * HOUR), "end": iso(t0 + 6 * HOUR)}
    moved = ok(client.patch(f"/v1/leases/{lease['uuid']}", json=patch, headers=user))
    (now_on,) = moved["placement"]["gpu"]
    assert now_on != host
    assert {i["provider_name"] for i in moved["items"]} == {now_on}
