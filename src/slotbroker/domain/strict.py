"""Number types for request models: a boolean is never a number, and a JSON string is not one either.

Pydantic's lax mode reads ``true`` as 1 and ``"5"`` as 5, so ``{"max_concurrent": false}`` would store
a quota of 0. Request bodies (JSON or YAML) carry real numbers; query parameters, strings by nature, are
declared with plain ``int`` in the routers and still parse.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Strict

Int = Annotated[int, Strict()]
Number = Annotated[float, Strict()]  # an integer is still a number; a boolean or a string is not
