"""Inventory of one resource class on one provider, and the rules an amount must follow.

``capacity = (total - reserved) * allocation_ratio`` (floored), as in OpenStack Placement: ``reserved``
keeps some for the host itself, ``allocation_ratio`` over-commits shareable classes such as VCPU.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from slotbroker.domain.strict import Int, Number

MAX_AMOUNT = 2**53  # exact in JSON numbers and in float64 arithmetic


class InventoryRuleError(ValueError):
    """A rule across fields is broken; ``field`` names the one to fix (for the error's JSON pointer)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def rule_field(error: Mapping[str, Any]) -> tuple[str, ...]:
    """The field an ``InventoryRuleError`` inside one pydantic error names, as pointer parts."""
    cause = (error.get("ctx") or {}).get("error")
    return (cause.field,) if isinstance(cause, InventoryRuleError) else ()


class Inventory(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    total: Int = Field(ge=1, le=MAX_AMOUNT, description="Installed amount.")
    reserved: Int = Field(0, ge=0, le=MAX_AMOUNT, description="Kept back, never allocated.")
    min_unit: Int = Field(1, ge=1, le=MAX_AMOUNT, description="Smallest amount one allocation may take.")
    max_unit: Int | None = Field(
        None, ge=1, le=MAX_AMOUNT, description="Largest amount one allocation may take; default total."
    )
    step_size: Int = Field(1, ge=1, le=MAX_AMOUNT, description="Allocations are multiples of this.")
    allocation_ratio: Number = Field(1.0, gt=0, le=1000, description="Over-commit factor.")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.reserved > self.total:
            raise InventoryRuleError("reserved", f"reserved ({self.reserved}) exceeds total ({self.total})")
        if self.max_unit is None:
            object.__setattr__(self, "max_unit", self.total)
        assert self.max_unit is not None
        if self.min_unit > self.max_unit:
            raise InventoryRuleError(
                "min_unit", f"min_unit ({self.min_unit}) exceeds max_unit ({self.max_unit})"
            )
        if self.step_size > self.max_unit:
            raise InventoryRuleError(
                "step_size", f"step_size ({self.step_size}) exceeds max_unit ({self.max_unit})"
            )
        return self

    @property
    def capacity(self) -> int:
        return capacity_of(self.total, self.reserved, self.allocation_ratio)

    def amount_problem(self, amount: int) -> str | None:
        """Why one allocation of ``amount`` breaks this inventory's unit rules, or ``None``."""
        assert self.max_unit is not None
        return unit_problem(amount, self.min_unit, self.max_unit, self.step_size)


def unit_problem(amount: int, min_unit: int, max_unit: int, step_size: int) -> str | None:
    """The unit rules one allocation must follow (min, max, multiple of step); ``None`` when it does."""
    if amount < min_unit:
        return f"amount {amount} is below min_unit {min_unit}"
    if amount > max_unit:
        return f"amount {amount} is above max_unit {max_unit}"
    if amount % step_size:
        return f"amount {amount} is not a multiple of step_size {step_size}"
    return None


def capacity_of(total: int, reserved: int, allocation_ratio: float) -> int:
    # A tiny epsilon keeps 0.1-style ratios from flooring 30.000000000000004 -> 30 but 29.9999 -> 29.
    return math.floor((total - reserved) * allocation_ratio + 1e-9)


def _shorthand(value: Any) -> Any:
    """``VCPU: 128`` in a document means ``VCPU: {total: 128}``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return {"total": value}
    return value


InventoryField = Annotated[Inventory, BeforeValidator(_shorthand)]
