"""/docs and /redoc work without internet (issue 14): every script and stylesheet they load is served
by this server, the tags come in the order users come for them, and the main operations carry examples
that the API itself accepts."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from pydantic import BaseModel

from slotbroker.api.openapi_docs import EXAMPLES, REQUEST
from slotbroker.domain.request import SlotRequest
from slotbroker.wire.jobs import CreateJob
from slotbroker.wire.leases import CreateLease, UpdateLease
from slotbroker.wire.offers import OfferSetRequest

MODELS: dict[tuple[str, str], type[BaseModel]] = {
    ("post", "/v1/find-slot"): SlotRequest,
    ("post", "/v1/offer-sets"): OfferSetRequest,
    ("post", "/v1/leases"): CreateLease,
    ("patch", "/v1/leases/{lease_id}"): UpdateLease,
    ("post", "/v1/jobs"): CreateJob,
}


def assets(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)=["']([^"']+)["']""", html) + re.findall(
        r"""url:\s*["']([^"']+)["']""", html
    )


def test_docs_pages_load_only_local_assets(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        r = client.get(page)
        assert r.status_code == 200, r.text
        found = assets(r.text)
        assert found, page
        for url in found:
            assert not re.match(r"(https?:)?//", url), (page, url)  # no CDN, no Google Fonts
            if url.endswith((".js", ".css", ".png")):
                got = client.get(url)
                assert got.status_code == 200, (page, url)
                assert len(got.content) > 1000, url
    assert "swagger-ui-bundle.js" in client.get("/docs").text
    assert "redoc.standalone.js" in client.get("/redoc").text


def test_tags_come_in_the_order_users_need_them(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    names = [t["name"] for t in doc["tags"]]
    assert names[:4] == ["find-slot", "offers", "leases", "jobs"]
    used = {t for p in doc["paths"].values() for op in p.values() for t in op.get("tags", [])}
    assert set(names) == used
    first_paths = list(doc["paths"])[:3]
    assert any(p.startswith("/v1/find-slot") for p in first_paths), first_paths


def test_main_operations_have_examples_that_validate(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    for method, path in EXAMPLES:
        content = doc["paths"][path][method]["requestBody"]["content"]
        assert content["application/json"]["examples"], (method, path)
        for _summary, value in EXAMPLES[(method, path)].values():
            MODELS[(method, path)].model_validate(value)
    SlotRequest.model_validate(REQUEST)
