"""``GET /v1/me``: who the token is (its project and role), so a client can scope and label what it shows."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Me(BaseModel):
    project: str = Field(description="The token's project: what the caller books as and sees by default.")
    role: str = Field(description="user, operator or admin.")
    manages_inventory: bool = Field(description="The role may change the inventory (operator, admin).")
