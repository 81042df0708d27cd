"""The portal as the app serves it, without a browser: the page and its assets, their security headers,
no reference to another origin, every module import resolvable; and ``GET /v1/me``, which it relies on."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from live_server import make_app, token
from slotbroker.portal import STATIC_DIR
from slotbroker.services.access.tokens import Role

ASSETS = sorted(p.name for p in STATIC_DIR.iterdir() if p.is_file())


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    """One app for the module: nothing here depends on the database backend."""
    return make_app(tmp_path_factory.mktemp("portal-app") / "db.sqlite")


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def test_index_is_served_with_a_same_origin_only_policy(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "connect-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert '<script type="module" src="/portal/static/main.js">' in r.text
    assert "/" not in client.get("/openapi.json").json()["paths"]  # not part of the API


@pytest.mark.parametrize("name", ASSETS)
def test_every_asset_is_served(client: TestClient, name: str) -> None:
    r = client.get(f"/portal/static/{name}")
    assert r.status_code == 200
    expected = {"js": "text/javascript", "css": "text/css", "html": "text/html"}[name.rsplit(".", 1)[1]]
    assert r.headers["content-type"].startswith(expected)


def test_unknown_and_escaping_asset_paths_are_404(client: TestClient) -> None:
    assert client.get("/portal/static/nope.js").status_code == 404
    assert client.get("/portal/static/..%2f__init__.py").status_code == 404
    assert client.get("/portal/static/%2e%2e/router.py").status_code == 404


def test_assets_name_no_other_origin_and_their_imports_exist() -> None:
    """Works offline: no CDN, no external font, no absolute URL; each ES module import is a file here."""
    for name in ASSETS:
        text = (STATIC_DIR / name).read_text(encoding="utf-8")
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), name
        assert "@import" not in text, name
        assert "url(http" not in text, name
        for target in re.findall(r'from "\./([^"]+)"', text):
            assert (STATIC_DIR / target).is_file(), f"{name} imports missing {target}"


def test_me_names_the_tokens_project_and_role(client: TestClient, app: FastAPI) -> None:
    user = {"Authorization": f"Bearer {token(app, Role.USER, 'science')}"}
    operator = {"Authorization": f"Bearer {token(app, Role.OPERATOR)}"}
    assert client.get("/v1/me", headers=user).json() == {
        "project": "science",
        "role": "user",
        "manages_inventory": False,
    }
    assert client.get("/v1/me", headers=operator).json()["manages_inventory"] is True
    r = client.get("/v1/me")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")


def test_find_offers_every_placement_policy_the_api_takes(client: TestClient) -> None:
    """The policy select is written out in find.js (a static module): it must name exactly the API's
    policies, in the API's order, so a policy added to the API shows up in the portal."""
    script = client.get("/portal/static/find.js").text
    listed = re.search(r"const POLICIES = \[([^\]]*)\];", script)
    assert listed is not None
    in_portal = re.findall(r'"([a-z_]+)"', listed.group(1))
    in_api = client.get("/openapi.json").json()["components"]["schemas"]["Policy"]["enum"]
    assert in_portal == in_api
