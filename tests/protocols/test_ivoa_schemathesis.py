"""Schemathesis against /ivoa with the Calycopis v1.0 spec (the one we follow), loaded from ../shared.

The spec's paths (``/requests``, ``/offersets/{uuid}``, ``/sessions/{uuid}``) are mapped onto our
``/ivoa`` prefix through the base URL and sent to the app in-process (ASGI). Every generated request must
not answer 5xx, and every documented answer must match the spec's schema, on every operation
(``POST /direct`` included). Generated uuids rarely name a real
offer set or session, so real ones are replayed through the same operations and checks too (YES offer
sets, sessions in each phase). SQLite only; about a minute at most.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.core.result import Ok
from test_ivoa import COMPUTE_KIND, EXAMPLES, NOTEBOOK, TOPOLOGY

SPEC = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "reference"
    / "ivoa-openapi"
    / "calycopis-v1.0"
    / "execution-broker.yaml"
)
CHECKS = [not_a_server_error, response_schema_conformance]
SKIPPED: set[str] = set()  # every operation, /direct included
MAX_EXAMPLES = 50
BUDGET_S = 60.0


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only (overrides conftest's fixture, parametrised over both backends)."""
    return f"sqlite:///{tmp_path}/slotbroker.db"


def _schema(app: FastAPI) -> Any:
    if not SPEC.is_file():
        pytest.skip(f"the Calycopis v1.0 spec is absent ({SPEC}); the shared reference dir is not here")
    schema = schemathesis.openapi.from_path(SPEC)
    schema.app = app
    schema.config.update(base_url="http://testserver/ivoa")  # the spec's base path -> our /ivoa prefix
    return schema


def _operations(schema: Any) -> dict[str, Any]:
    ops = {}
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        op = result.ok()
        ops[op.label] = op
    assert {
        "POST /requests",
        "GET /offersets/{uuid}",
        "GET /sessions/{uuid}",
        "POST /sessions/{uuid}",
    } <= set(ops)
    return ops


@pytest.mark.slow
def test_calycopis_spec_conformance(app: FastAPI, admin: dict[str, str], user: dict[str, str]) -> None:
    schema = _schema(app)
    with TestClient(app) as c:
        assert c.post("/v1/topology", json=TOPOLOGY, headers=admin).status_code == 200
    ops = _operations(schema)
    deadline = time.monotonic() + BUDGET_S
    failures: list[str] = []
    for label, op in ops.items():
        if label in SKIPPED:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if time.monotonic() > deadline:
                break

            @given(case=op.as_strategy(generation_mode=mode))
            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                phases=[Phase.explicit, Phase.generate],  # no shrinking: the budget stays bounded
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any) -> None:
                if time.monotonic() > deadline:
                    return
                case.call_and_validate(headers=user, checks=CHECKS)

            try:
                run()
            except Unsatisfiable:
                pass
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{label} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)


@pytest.mark.slow
def test_real_offer_sets_and_sessions_conform(
    app: FastAPI, admin: dict[str, str], user: dict[str, str]
) -> None:
    """Cases built by hand for real ids, checked exactly as the generated ones."""
    schema = _schema(app)
    ops = _operations(schema)
    with TestClient(app) as c:
        assert c.post("/v1/topology", json=TOPOLOGY, headers=admin).status_code == 200
    request: dict[str, Any] = {
        "executable": NOTEBOOK,
        "compute": {
            "kind": COMPUTE_KIND,
            "meta": {"name": "compute-1"},
            "cores": {"min": 2, "max": 4},
            "memory": {"min": 2},
        },
        "schedule": {"requested": {"duration": "PT1H"}},
    }
    for media in ("application/yaml", "application/json"):
        case = ops["POST /requests"].Case(body=request, media_type=media)
        response = case.call_and_validate(headers=user, checks=CHECKS)
        assert response.status_code == 200, response.text
    offer_set = case.call(headers={**user, "Accept": "application/json"}).json()
    assert offer_set["result"] == "YES"
    set_id = offer_set["meta"]["uuid"]
    ids = [o["meta"]["uuid"] for o in offer_set["offers"]]
    assert len(ids) >= 2

    def check(label: str, uuid: str, body: dict[str, Any] | None = None) -> Any:
        kwargs: dict[str, Any] = {"path_parameters": {"uuid": uuid}}
        if body is not None:
            kwargs |= {"body": body, "media_type": "application/json"}
        got = ops[label].Case(**kwargs).call_and_validate(headers=user, checks=CHECKS)
        assert got.status_code == 200, got.text
        return got

    def update(value: str) -> dict[str, str]:
        return {"kind": "uri:enum-value-update", "path": "phase", "value": value}

    check("GET /offersets/{uuid}", set_id)
    check("GET /sessions/{uuid}", ids[0])
    check("POST /sessions/{uuid}", ids[0], update("REJECTED"))
    check("POST /sessions/{uuid}", ids[1], update("ACCEPTED"))
    check("POST /sessions/{uuid}", ids[1], update("CANCELLED"))
    check("GET /offersets/{uuid}", set_id)  # REJECTED, CANCELLED, REJECTED siblings
    # result NO (nothing fits) conforms too
    huge = {**request, "compute": {**request["compute"], "cores": {"min": 100_000}}}
    response = (
        ops["POST /requests"]
        .Case(body=huge, media_type="application/json")
        .call_and_validate(headers=user, checks=CHECKS)
    )
    assert response.status_code == 200


UNREADABLE = {  # examples a v1.0 reader must refuse, and a field each names
    "006-001-offerset-request.yaml": "/volumes/0/kind",  # v1.0//types: a malformed kind URI
    "example-011-001-offerset-request.yaml": "/executable/kind",  # the 2025 schema: `type`, not `kind`
    "example-011-007-offerset-request.yaml": "/executable/kind",
}


@pytest.mark.slow
def test_every_example_replays_and_conforms(
    app: FastAPI, admin: dict[str, str], user: dict[str, str]
) -> None:
    """Every request document of ../shared/reference/ivoa-examples through the spec's own operations:
    offer-set requests on POST /requests, the reject and accept updates on POST /sessions/{uuid}; each
    answer checked against the Calycopis v1.0 schemas, and read back through the GET operations."""
    schema = _schema(app)
    if not EXAMPLES.is_dir():
        pytest.skip(f"the IVOA examples are absent ({EXAMPLES})")
    ops = _operations(schema)
    with TestClient(app) as c:
        assert c.post("/v1/topology", json=TOPOLOGY, headers=admin).status_code == 200
    names = sorted(p.name for p in EXAMPLES.iterdir() if "request" in p.name)
    updates = [n for n in names if "-reject-" in n or "-accept-" in n]
    assert set(UNREADABLE) <= set(names)
    assert len(updates) == 2
    json_headers = {**user, "Accept": "application/json"}
    offer_ids: list[str] = []
    for name in (n for n in names if n not in updates):
        body = yaml.safe_load((EXAMPLES / name).read_bytes())
        media = "application/json" if name.endswith(".json") else "application/yaml"
        case = ops["POST /requests"].Case(body=body, media_type=media)
        if name in UNREADABLE:
            got = case.call(headers=json_headers)
            assert got.status_code == 400, (name, got.text)
            assert UNREADABLE[name] in {e["pointer"] for e in got.json()["errors"]}, (name, got.text)
            continue
        got = case.call_and_validate(headers=user, checks=CHECKS)
        assert got.status_code == 200, (name, got.text)
        doc = yaml.safe_load(got.text)
        assert doc["result"] == "YES", (name, doc)
        ids = [o["meta"]["uuid"] for o in doc["offers"]]
        for label, uuid in (("GET /offersets/{uuid}", doc["meta"]["uuid"]), ("GET /sessions/{uuid}", ids[0])):
            read = (
                ops[label].Case(path_parameters={"uuid": uuid}).call_and_validate(headers=user, checks=CHECKS)
            )
            assert read.status_code == 200, (name, label, read.text)
        offer_ids = ids
    assert len(offer_ids) >= 2
    for name, uuid in zip(
        updates, offer_ids, strict=False
    ):  # 001-006 rejects offer 0, 001-010 accepts offer 1
        body = yaml.safe_load((EXAMPLES / name).read_bytes())
        media = "application/json" if name.endswith(".json") else "application/yaml"
        case = ops["POST /sessions/{uuid}"].Case(path_parameters={"uuid": uuid}, body=body, media_type=media)
        got = case.call_and_validate(headers=user, checks=CHECKS)
        assert got.status_code == 200, (name, got.text)
        assert yaml.safe_load(got.text)["phase"] == body["value"], name
