"""FastAPI dependencies the routers share: the service graph ``bootstrap`` built, from ``app.state``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from slotbroker.api.find_slot_lane import FindSlotLane
from slotbroker.bootstrap import Services


async def services(request: Request) -> Services:
    """Async so that FastAPI calls it on the event loop (a sync dependency costs a thread-pool hop)."""
    svc: Services = request.app.state.services
    return svc


async def find_slot_lane(request: Request) -> FindSlotLane:
    """Where a request that searches synchronously runs its search (``api/find_slot_lane.py``)."""
    lane: FindSlotLane = request.app.state.find_slot_lane
    return lane


Lane = Annotated[FindSlotLane, Depends(find_slot_lane)]
