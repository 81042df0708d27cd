"""Every ``METHOD /path`` the README, docs/ and the portal's modules name is a route the API serves with
that method (as its OpenAPI document lists it): a moved or renamed route must not leave the docs
pointing at a 404."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from slotbroker.api.app import create_app
from slotbroker.config import Settings

ROOT = Path(__file__).resolve().parents[2]
PLACES = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").rglob("*.md")),
    *sorted((ROOT / "src" / "slotbroker" / "portal" / "static").glob("*.js")),
]
NAMED_ROUTE = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE)\s+(/(?:v1|fabric|ivoa)[^\s`)\]|,;\[?]*)")


def named_routes() -> list[tuple[str, str, str]]:
    out = []
    for path in PLACES:
        for m in NAMED_ROUTE.finditer(path.read_text(encoding="utf-8")):
            out.append((str(path.relative_to(ROOT)), m.group(1), m.group(2).rstrip(".:")))
    return sorted(set(out))


NAMED = named_routes()


@pytest.fixture(scope="module")
def routes() -> list[tuple[re.Pattern[str], set[str]]]:
    app = create_app(Settings("sqlite:///:memory:", migrate_on_start=False, planner_workers=0))
    out = []
    for template, operations in app.openapi()["paths"].items():
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))  # {lease_id} or a value
        out.append((re.compile(f"^{pattern}$"), {m.upper() for m in operations}))
    return out


def served(routes: list[tuple[re.Pattern[str], set[str]]], method: str, path: str) -> bool:
    return any(pattern.match(path) and method in methods for pattern, methods in routes)


def test_the_docs_name_many_routes() -> None:
    assert len(NAMED) > 100  # the scan finds them (a broken pattern would pass everything below)


@pytest.mark.parametrize(("where", "method", "path"), NAMED)
def test_a_named_route_is_served(
    routes: list[tuple[re.Pattern[str], set[str]]], where: str, method: str, path: str
) -> None:
    assert served(routes, method, path), f"{where}: `{method} {path}` is not a route of the API"


def test_the_check_tells_a_route_from_a_typo(routes: list[tuple[re.Pattern[str], set[str]]]) -> None:
    assert served(routes, "GET", "/v1/leases/{id}")
    assert served(routes, "GET", "/v1/leases/3fa85f64")
    assert served(routes, "GET", "/v1/ical/{secret}.ics")
    assert not served(routes, "GET", "/v1/ical")
    assert not served(routes, "DELETE", "/v1/find-slot")
