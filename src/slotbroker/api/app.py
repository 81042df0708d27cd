"""The FastAPI application factory."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline

import slotbroker
from slotbroker import portal
from slotbroker.api import background, mcp_endpoint, openapi_docs, openapi_links, problems
from slotbroker.api.claim_fast_path import ClaimFastPath
from slotbroker.api.content import YAML_TYPES, ContentMiddleware
from slotbroker.api.find_slot_fast_path import FindSlotFastPath
from slotbroker.api.find_slot_lane import FindSlotLane
from slotbroker.api.heap import HeapPolicy
from slotbroker.api.limits import LimitsMiddleware
from slotbroker.api.metrics import Metrics, MetricsMiddleware
from slotbroker.api.query_check import reject_unknown_query
from slotbroker.api.routers import (
    calendar_feeds,
    catalog,
    claims,
    fabric,
    find_slot,
    health,
    ivoa,
    jobs,
    leases,
    me,
    network,
    offers,
    providers,
    sites,
    topology,
)
from slotbroker.bootstrap import build_services
from slotbroker.config import Settings
from slotbroker.domain.request import SlotRequest
from slotbroker.domain.topology import Topology
from slotbroker.services.planner import Planner
from slotbroker.store import migrate
from slotbroker.store.db import Database

DOCS_ASSETS = "/docs-assets"  # Swagger UI's and ReDoc's JavaScript and CSS, from fastapi-offline
DESCRIPTION = """A time-aware resource broker: inventory, calendar, find-slot, offers and leases.

Every request and response body may be JSON or YAML (`Content-Type` / `Accept`: `application/yaml`).
Errors are RFC 9457 problem details with a stable `code`."""


def create_app(
    settings: Settings | None = None, *, db: Database | None = None, planner: Planner | None = None
) -> FastAPI:
    settings = settings or Settings()
    db = db or Database(settings.database_url)
    if settings.migrate_on_start:
        migrate.upgrade(db.engine)
    app = FastAPIOffline(  # /docs and /redoc with packaged assets: they work without internet
        static_url=DOCS_ASSETS,
        title="slotbroker",
        version=slotbroker.__version__,
        description=DESCRIPTION,
        lifespan=background.lifespan,  # lease events + offer sweep, planner pool, find-slot jobs
        dependencies=[Depends(reject_unknown_query)],  # every route: an unknown query parameter is a 422
    )
    app.state.settings = settings
    app.state.services = build_services(settings, db, planner=planner)
    app.state.metrics = Metrics()
    calendar = app.state.services.find_slot.calendar
    app.state.heap = HeapPolicy(
        lambda: calendar.rebuilds, freeze=settings.gc_freeze, threshold=settings.gc_threshold
    )
    # every synchronous search runs here: find-slot (route and fast path), FABRIC's, IVOA's
    app.state.find_slot_lane = FindSlotLane(settings.find_slot_threads, after=app.state.heap.after_search)
    problems.install(app)
    # Routing order = match order: FastAPI tries routes one by one (twice per request since 0.16x), so the
    # hot booking paths go first; the OpenAPI document keeps DOC_ORDER (_document).
    for router in ROUTING_ORDER:
        app.include_router(router)
    portal.mount(app)  # GET / and /portal/static: the web portal, a client of the API above
    mcp_endpoint.mount(app)  # /mcp: the MCP server over streamable HTTP (docs/mcp.md)
    # Outermost last: metrics see everything, limits refuse before bodies are read; the claim fast path
    # and find-slot fast paths are innermost, so body limits, YAML, limits and metrics apply to them as to
    # every route.
    if settings.claim_fast_path:
        app.add_middleware(ClaimFastPath)
    if settings.find_slot_fast_path:
        app.add_middleware(FindSlotFastPath)
    app.add_middleware(
        ContentMiddleware,
        max_body=settings.max_body_bytes,
        max_items=settings.max_body_items,
        large_paths={"/v1/topology": settings.max_topology_bytes},
    )
    app.add_middleware(
        LimitsMiddleware,
        max_in_flight=settings.max_in_flight,
        max_streams=settings.max_streams,
        rate_per_s=settings.rate_per_s,
        burst=settings.rate_burst,
    )
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


# The document's order: what users come for first (search, offers, leases, jobs), then the inventory and
# the compatible APIs (openapi_docs.TAGS orders the tags the same way).
DOC_ORDER = tuple(
    m.router
    for m in (
        find_slot,
        offers,
        leases,
        calendar_feeds,
        jobs,
        sites,
        claims,
        providers,
        catalog,
        network,
        topology,
        fabric,
        ivoa,
        me,
        health,
    )
)
# Measured on /v1/claims: route matching was about a fifth of the request's CPU with it last.
ROUTING_ORDER = tuple(
    m.router
    for m in (
        claims,
        offers,
        leases,
        find_slot,
        jobs,
        ivoa,
        fabric,
        providers,
        catalog,
        network,
        topology,
        sites,
        calendar_feeds,
        me,
        health,
    )
)
assert sorted(map(id, DOC_ORDER)) == sorted(map(id, ROUTING_ORDER))


def _doc_rank(route: Any) -> int:
    router = getattr(route, "original_router", None)  # FastAPI >= 0.16x keeps included routers whole
    return next((i for i, r in enumerate(DOC_ORDER) if r is router), -1)


def _document(app: FastAPI) -> dict[str, Any]:
    """The generated document plus what FastAPI cannot know: YAML twins and the problem schemas."""
    routes = sorted(app.routes, key=_doc_rank)  # stable: FastAPI's own routes (docs) keep their place
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=routes)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = problems.Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = schemas["Problem"].pop("$defs", {})
    schemas.update(defs)
    for model in (SlotRequest,):  # bodies routes read as raw documents (validated with DB context)
        schemas[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schemas[model.__name__].pop("$defs", {}))
    # read raw and validated off the event loop (routers/topology.py): input-mode schemas, named as FastAPI
    # names them when a model's input and output differ
    schema = Topology.model_json_schema(ref_template="#/components/schemas/{model}-Input")
    for name, sub in {**schema.pop("$defs", {}), "Topology": schema}.items():
        schemas.setdefault(f"{name}-Input", sub)
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    for path in doc.get("paths", {}).values():
        for op in path.values():
            body = op.get("requestBody", {}).get("content", {})
            if "application/json" in body:
                body["application/yaml"] = body["application/json"]
            for status, resp in op.get("responses", {}).items():
                if status == "422" and "application/json" in resp.get("content", {}):
                    resp["content"] = {
                        problems.PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}
                    }
                    resp["description"] = "Unprocessable Content"
                content = resp.get("content", {})
                for ctype in list(content):
                    if ctype in ("application/json", problems.PROBLEM_JSON):
                        content.setdefault("application/yaml", content[ctype])
    doc["x-yaml-media-types"] = list(YAML_TYPES)
    openapi_links.add_links(doc)  # create responses -> the operations that take their ids
    openapi_docs.decorate(doc)  # tags in the order users come for them, examples on the main operations
    return doc
