"""Property-based API tests: schemathesis generates requests from the OpenAPI document.

Every operation, on SQLite and once on PostgreSQL, must never answer 5xx, must answer with a body that
matches the documented schema, and with a documented content type. A failure here is a real bug.

Operations are driven one by one with Hypothesis (rather than ``schema.parametrize``) so the database
fixture, parametrised over both backends, is shared by all of them and every failure is reported.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance
from schemathesis.core.result import Ok

from slotbroker.demo.fabric import fabric_like_topology

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
MAX_EXAMPLES = 25


def _seed(app: FastAPI, admin: dict[str, str]) -> None:
    """A small slice of the demo topology, so generated requests also meet real rows."""
    doc = fabric_like_topology().model_dump(mode="json")
    region = doc["providers"][0]
    region["children"] = region["children"][:2]
    doc["providers"] = [region]
    sites = {s["name"] for s in region["children"]}
    doc["links"] = [link for link in doc["links"] if set(link["endpoints"]) <= sites]
    doc["facility_ports"] = [p for p in doc["facility_ports"] if p["site"] in sites]
    with TestClient(app) as c:
        r = c.post("/v1/topology", json=doc, headers=admin)
        assert r.status_code == 200, r.text


def _fuzz(app: FastAPI, headers: dict[str, str], mode: GenerationMode) -> list[str]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except Unsatisfiable:  # nothing to make invalid (no parameters, no body): no negative case
            assert mode is GenerationMode.NEGATIVE, operation.label
        except (Exception, BaseExceptionGroup) as exc:  # report every failure, not just the first
            failures.append(f"{operation.label} ({mode.value}): {exc}")
    return failures


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_every_operation_conforms(app: FastAPI, admin: dict[str, str], mode: GenerationMode) -> None:
    _seed(app, admin)
    failures = _fuzz(app, admin, mode)
    assert not failures, "\n\n".join(failures)
