"""The MCP server: the SDK's low-level ``Server`` with our tool, resource and prompt handlers.

The low-level server (rather than the decorator-based ``MCPServer``) because the tools' input schemas are
the API's own models and their arguments go to the API as they came: the SDK would otherwise validate
them first against a schema of its own making and answer in a shape of its own.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pydantic
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INVALID_PARAMS,
    CallToolRequestParams,
    CallToolResult,
    GetPromptRequestParams,
    GetPromptResult,
    ListPromptsResult,
    ListResourcesResult,
    ListResourceTemplatesResult,
    ListToolsResult,
    PaginatedRequestParams,
    ReadResourceRequestParams,
    ReadResourceResult,
)

import slotbroker
from slotbroker.client.errors import SlotbrokerAPIError
from slotbroker.mcp import resources
from slotbroker.mcp.connect import Connector
from slotbroker.mcp.results import failed, from_api, from_arguments, problem_dict
from slotbroker.mcp.tools import BY_NAME, TOOLS

INSTRUCTIONS = """slotbroker books compute capacity over time. Typical flow: list_sites -> find_slot
(nothing fits: read `explanation`) -> create_offers (holds capacity for minutes) -> accept_offer (a lease)
-> create_job / get_job / job_logs -> cancel_job, cancel_lease when done. Errors are tool errors with a
problem `code`, JSON `pointer`s to the arguments to fix and, when rate limited, `retry_after` seconds."""

Ctx = ServerRequestContext[Any, Any]
log = logging.getLogger("slotbroker.mcp")


async def call(connector: Connector, request: Any, name: str, arguments: dict[str, Any]) -> CallToolResult:
    """Run one tool for the caller; every failure the agent can act on comes back as a tool error."""
    spec = BY_NAME.get(name)
    if spec is None:
        return failed(problem_dict(404, "unknown_tool", f"no tool named {name!r}"))
    try:
        return await spec.run(connector.caller(request), arguments)
    except SlotbrokerAPIError as exc:
        return from_api(exc)
    except pydantic.ValidationError as exc:
        return from_arguments(exc)
    except httpx.TransportError as exc:
        return failed(problem_dict(503, "unreachable", f"the broker did not answer: {type(exc).__name__}"))
    except TimeoutError as exc:
        return failed(problem_dict(504, "timeout", str(exc)))
    except Exception:  # a bug here: logged, and answered as the API answers one (no details leak)
        log.exception("MCP tool %s failed", name)
        return failed(problem_dict(500, "internal_error", "internal error; it has been logged"))


def build_server(connector: Connector) -> Server[Any]:
    async def list_tools(ctx: Ctx, params: PaginatedRequestParams | None) -> ListToolsResult:
        return ListToolsResult(tools=[spec.tool() for spec in TOOLS])

    async def call_tool(ctx: Ctx, params: CallToolRequestParams) -> CallToolResult:
        return await call(connector, ctx.request, params.name, dict(params.arguments or {}))

    async def list_resources(ctx: Ctx, params: PaginatedRequestParams | None) -> ListResourcesResult:
        return ListResourcesResult(resources=resources.RESOURCES)

    async def list_templates(ctx: Ctx, params: PaginatedRequestParams | None) -> ListResourceTemplatesResult:
        return ListResourceTemplatesResult(resource_templates=resources.TEMPLATES)

    async def read_resource(ctx: Ctx, params: ReadResourceRequestParams) -> ReadResourceResult:
        return ReadResourceResult(contents=[await resources.read(connector.caller(ctx.request), params.uri)])

    async def list_prompts(ctx: Ctx, params: PaginatedRequestParams | None) -> ListPromptsResult:
        return ListPromptsResult(prompts=resources.PROMPTS)

    async def get_prompt(ctx: Ctx, params: GetPromptRequestParams) -> GetPromptResult:
        if params.name != resources.BOOK_GPUS.name:
            raise MCPError(code=INVALID_PARAMS, message=f"no prompt named {params.name!r}")
        return resources.book_gpus(params.arguments)

    return Server(
        "slotbroker",
        version=slotbroker.__version__,
        title="slotbroker",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
    )
