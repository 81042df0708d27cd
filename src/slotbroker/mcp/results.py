"""What a tool answers: structured content plus a short text summary, or a tool error carrying the problem.

An error is never a transport failure: the agent reads it as the tool's result (``isError``) with the API's
problem ``code``, the JSON pointers of the offending fields and, for 429/503, the ``Retry-After`` figure,
both as ``structuredContent`` (for programs) and as text (for models that only read text).
"""

from __future__ import annotations

import json
from typing import Any

import pydantic
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel

from slotbroker.client.errors import SlotbrokerAPIError


def ok(view: BaseModel, summary: str) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=summary)],
        structured_content=view.model_dump(mode="json"),
    )


def problem_dict(
    status: int,
    code: str,
    detail: str,
    errors: list[dict[str, str]] | None = None,
    retry_after: float | None = None,
) -> dict[str, Any]:
    """The problem as the tool error's structured content (RFC 9457 members the agent acts on)."""
    out: dict[str, Any] = {"status": status, "code": code, "detail": detail, "errors": errors or []}
    if retry_after is not None:
        out["retry_after"] = retry_after
    return out


def failed(problem: dict[str, Any]) -> CallToolResult:
    text = f"{problem['code']} ({problem['status']}): {problem['detail']}"
    if problem.get("retry_after") is not None:
        text += f" Retry after {problem['retry_after']:g} s."
    text += "\n" + json.dumps(problem)
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=problem, is_error=True
    )


def from_api(exc: SlotbrokerAPIError) -> CallToolResult:
    """The API's problem as a tool error, its pointers naming the tool's arguments."""
    errors = [{"pointer": argument_pointer(e.pointer), "detail": e.detail} for e in exc.errors]
    return failed(problem_dict(exc.status, exc.code, exc.detail, errors, exc.retry_after))


def from_arguments(exc: pydantic.ValidationError) -> CallToolResult:
    """Arguments the tool itself reads (ids, times) failed validation: the same shape the API answers."""
    errors = [{"pointer": pointer(err["loc"]), "detail": err["msg"]} for err in exc.errors()]
    first = errors[0] if errors else {"pointer": "", "detail": "invalid arguments"}
    return failed(problem_dict(422, "validation_error", f"{first['pointer']}: {first['detail']}", errors))


def pointer(loc: tuple[int | str, ...]) -> str:
    """An RFC 6901 JSON pointer from a pydantic error location."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in loc)


def argument_pointer(ptr: str) -> str:
    """The API names path and query parameters ``#/path/NAME`` and ``#/query/NAME``; a tool takes them
    as arguments of the same name (and a body's fields as its arguments), so each becomes ``/NAME``."""
    for prefix in ("#/path/", "#/query/"):
        if ptr.startswith(prefix):
            return "/" + ptr[len(prefix) :]
    return ptr
