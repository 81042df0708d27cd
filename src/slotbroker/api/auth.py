"""Bearer-token authentication and role checks, as FastAPI dependencies.

They are ``async`` on purpose: FastAPI runs a sync dependency in the thread pool, and a hop there and
back costs more than the check itself (two hops per request before the endpoint's own). A verified
token is found in ``TokenService``'s cache without I/O; only a miss goes to a thread for the lookup.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from slotbroker.domain.errors import Forbidden, Unauthorized
from slotbroker.services.access.tokens import Principal, Role, TokenService

bearer = HTTPBearer(auto_error=False, description="An API token from `slotbroker admin token create`.")


async def principal(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    if creds is None or creds.scheme.lower() != "bearer":
        raise Unauthorized("missing bearer token (Authorization: Bearer <token>)")
    return await authenticate(request.app.state.services.tokens, creds.credentials)


async def authenticate(tokens: TokenService, token: str) -> Principal:
    """The token's principal (``Unauthorized`` if unknown, revoked or expired); /v1 and /mcp alike."""
    found = tokens.cached(token)
    if found is not None:
        return found
    return await run_in_threadpool(tokens.authenticate, token)


async def inventory_manager(who: Annotated[Principal, Depends(principal)]) -> Principal:
    if not who.manages_inventory:
        raise Forbidden("changing the inventory needs the admin or operator role")
    return who


async def admin(who: Annotated[Principal, Depends(principal)]) -> Principal:
    if who.role != Role.ADMIN:
        raise Forbidden("this needs the admin role")
    return who


Reader = Annotated[Principal, Depends(principal)]
Manager = Annotated[Principal, Depends(inventory_manager)]
Admin = Annotated[Principal, Depends(admin)]
