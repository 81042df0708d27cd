"""/v1/topology: a whole inventory in one document, imported atomically and exported.

The import reads its body itself: documents run to tens of megabytes, and FastAPI would parse and
validate a declared body model on the event loop, where a big (or big and wrong) document stalls every
other request, health checks included. Here parsing, the size caps and validation run in a worker
thread, and the body's schema is declared for OpenAPI by hand (``app._document`` adds it).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from slotbroker.api.auth import Manager, Reader
from slotbroker.api.problems import TOO_DEEP, responses
from slotbroker.api.routers.deps import services
from slotbroker.bootstrap import Services
from slotbroker.domain.topology import Topology
from slotbroker.services.inventory.topology import check_size
from slotbroker.wire import providers as views

router = APIRouter(
    prefix="/v1/topology", tags=["topology"], responses=responses(400, 401, 413, 415, 422, 429, 503)
)
Svc = Annotated[Services, Depends(services)]
TOPOLOGY_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Topology-Input"}}},
    }
}


@router.get("", response_model=Topology, response_model_exclude_none=True, summary="Export the topology")
def export_topology(who: Reader, svc: Svc) -> Topology:
    return svc.topology.export()


@router.post(
    "",
    response_model=views.ImportReport,
    responses=responses(403, 409),
    openapi_extra=TOPOLOGY_BODY,
    summary="Import a topology document (all or nothing; re-importing an export is a no-op)",
)
async def import_topology(
    request: Request,
    who: Manager,
    svc: Svc,
    prune: Annotated[bool, Query(description="Also delete what the document omits")] = False,
) -> views.ImportReport:
    body = await request.body()  # JSON: the content middleware turned YAML into it
    doc = await run_in_threadpool(read_document, body, request.app.state.settings.max_topology_items)
    return await run_in_threadpool(svc.topology.import_, doc, prune=prune)


def read_document(body: bytes, cap: int) -> Topology:
    """Parse, cap and validate, answering as FastAPI does for a declared body (the same problems)."""
    if not body:
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required"}])
    try:
        raw: Any = json.loads(body)
    except RecursionError as exc:
        raise HTTPException(400, TOO_DEEP) from exc
    except ValueError as exc:
        error = {"type": "json_invalid", "loc": ("body", getattr(exc, "pos", 0)), "msg": "JSON decode error"}
        raise RequestValidationError([error]) from exc
    check_size(raw, cap)
    try:
        return Topology.model_validate(raw)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from exc
