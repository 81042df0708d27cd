"""FastAPI dependencies the routers share: the service graph ``bootstrap`` built, from ``app.state``."""

from __future__ import annotations

from fastapi import Request

from slotbroker.bootstrap import Services


async def services(request: Request) -> Services:
    """Async so that FastAPI calls it on the event loop (a sync dependency costs a thread-pool hop)."""
    svc: Services = request.app.state.services
    return svc
