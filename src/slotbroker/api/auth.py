"""Bearer-token authentication and role checks, as FastAPI dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from slotbroker.domain.errors import Forbidden, Unauthorized
from slotbroker.services.tokens import Principal, Role, TokenService

bearer = HTTPBearer(auto_error=False, description="An API token from `slotbroker token create`.")


def principal(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    if creds is None or creds.scheme.lower() != "bearer":
        raise Unauthorized("missing bearer token (Authorization: Bearer <token>)")
    tokens: TokenService = request.app.state.services.tokens
    return tokens.authenticate(creds.credentials)


def inventory_manager(who: Annotated[Principal, Depends(principal)]) -> Principal:
    if not who.manages_inventory:
        raise Forbidden("changing the inventory needs the admin or operator role")
    return who


def admin(who: Annotated[Principal, Depends(principal)]) -> Principal:
    if who.role != Role.ADMIN:
        raise Forbidden("this needs the admin role")
    return who


Reader = Annotated[Principal, Depends(principal)]
Manager = Annotated[Principal, Depends(inventory_manager)]
Admin = Annotated[Principal, Depends(admin)]
