"""/v1/sites: each site's capacity per class and what is free now."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from slotbroker.api.auth import Reader
from slotbroker.api.problems import responses
from slotbroker.api.routers.deps import services
from slotbroker.bootstrap import Services
from slotbroker.wire.sites import SiteList

router = APIRouter(prefix="/v1", tags=["sites"], responses=responses(400, 401, 429, 503))
Svc = Annotated[Services, Depends(services)]


@router.get(
    "/sites",
    response_model=SiteList,
    summary="Capacity summaries: what each site has per class, free now, and its hosts, links and ports",
)
def list_sites(who: Reader, svc: Svc) -> SiteList:
    return svc.sites.list()
