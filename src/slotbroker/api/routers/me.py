"""``GET /v1/me``: the caller's own project and role.

A client cannot otherwise know them from a token alone; the portal needs them to overlay *your* leases
(an admin's list holds everyone's) and to offer operator pages only to operators.
"""

from __future__ import annotations

from fastapi import APIRouter

from slotbroker.api.auth import Reader
from slotbroker.api.problems import responses
from slotbroker.wire.me import Me

router = APIRouter(prefix="/v1", tags=["auth"], responses=responses(401, 429, 503))


@router.get("/me", response_model=Me, summary="The caller's project and role")
def me(who: Reader) -> Me:
    return Me(project=who.project, role=str(who.role), manages_inventory=who.manages_inventory)
