"""/v1/topology: a whole inventory in one document, imported atomically and exported."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from slotbroker.api.auth import Manager, Reader
from slotbroker.api.problems import responses
from slotbroker.api.routers.deps import Services, services
from slotbroker.domain.topology import Topology
from slotbroker.services import views

router = APIRouter(
    prefix="/v1/topology", tags=["topology"], responses=responses(400, 401, 413, 415, 422, 429, 503)
)
Svc = Annotated[Services, Depends(services)]


@router.get("", response_model=Topology, response_model_exclude_none=True, summary="Export the topology")
def export_topology(who: Reader, svc: Svc) -> Topology:
    return svc.topology.export()


@router.post(
    "",
    response_model=views.ImportReport,
    responses=responses(403, 409),
    summary="Import a topology document (all or nothing; re-importing an export is a no-op)",
)
def import_topology(
    body: Topology,
    who: Manager,
    svc: Svc,
    prune: Annotated[bool, Query(description="Also delete what the document omits")] = False,
) -> views.ImportReport:
    return svc.topology.import_(body, prune=prune)
