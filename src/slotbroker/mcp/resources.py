"""Readable resources (the caller's leases, a site's calendar) and the booking prompt.

Resources are read with the caller's token like the tools, so ``slotbroker://leases`` is the caller's
project's leases and nothing else. A failed read is a JSON-RPC error carrying the problem (resources have
no error result of their own, unlike tools).
"""

from __future__ import annotations

import json
import re

from mcp.shared.exceptions import MCPError
from mcp.types import (
    INVALID_PARAMS,
    GetPromptResult,
    Prompt,
    PromptArgument,
    PromptMessage,
    Resource,
    ResourceTemplate,
    TextContent,
    TextResourceContents,
)

from slotbroker.client import AsyncClient
from slotbroker.client.errors import SlotbrokerAPIError
from slotbroker.mcp.results import problem_dict
from slotbroker.mcp.sites import CALENDAR_DAYS, site_calendar

LEASES_URI = "slotbroker://leases"
CALENDAR_TEMPLATE = "slotbroker://sites/{site}/calendar"
CALENDAR_URI = re.compile(r"^slotbroker://sites/(?P<site>[^/]+)/calendar$")
MAX_LEASES = 500
JSON = "application/json"

RESOURCES = [
    Resource(
        uri=LEASES_URI,
        name="leases",
        title="Your leases",
        description=f"Your project's leases (the first {MAX_LEASES}), as JSON.",
        mime_type=JSON,
    )
]
TEMPLATES = [
    ResourceTemplate(
        uri_template=CALENDAR_TEMPLATE,
        name="site-calendar",
        title="A site's calendar",
        description=f"Capacity, peak use and free per hour for the next {CALENDAR_DAYS} days of a site and "
        "its hosts, as JSON.",
        mime_type=JSON,
    )
]


async def read(api: AsyncClient, uri: str) -> TextResourceContents:
    try:
        if uri == LEASES_URI:
            leases = []
            async for lease in api.iter_leases(page_size=100):
                leases.append(lease.model_dump(mode="json"))
                if len(leases) >= MAX_LEASES:
                    break
            text = json.dumps({"items": leases})
        elif (match := CALENDAR_URI.match(uri)) is not None:
            text = (await site_calendar(api, match["site"])).model_dump_json()
        else:
            raise MCPError(code=INVALID_PARAMS, message=f"no such resource: {uri}", data={"uri": uri})
    except SlotbrokerAPIError as exc:
        errors = [{"pointer": e.pointer, "detail": e.detail} for e in exc.errors]
        problem = problem_dict(exc.status, exc.code, exc.detail, errors, exc.retry_after)
        raise MCPError(code=INVALID_PARAMS, message=f"{exc.code}: {exc.detail}", data=problem) from exc
    return TextResourceContents(uri=uri, text=text, mime_type=JSON)


BOOK_GPUS = Prompt(
    name="book_gpus",
    title="Find and book N GPUs for H hours",
    description="Walks through list_sites, find_slot, create_offers, accept_offer and, when done, "
    "cancel_lease.",
    arguments=[
        PromptArgument(name="gpus", description="How many GPUs (N).", required=True),
        PromptArgument(name="hours", description="For how many hours (H).", required=True),
        PromptArgument(
            name="gpu_class", description="The GPU resource class, e.g. GPU_A100.", required=False
        ),
        PromptArgument(name="earliest", description="Not before (ISO 8601); default now.", required=False),
    ],
)
PROMPTS = [BOOK_GPUS]


def _positive(arguments: dict[str, str], name: str) -> int:
    value = arguments.get(name, "")
    if not value.isdigit() or int(value) < 1:
        raise MCPError(
            code=INVALID_PARAMS,
            message=f"{name}: a positive whole number, got {value!r}",
            data={"argument": name},
        )
    return int(value)


def book_gpus(arguments: dict[str, str] | None) -> GetPromptResult:
    args = arguments or {}
    gpus, hours = _positive(args, "gpus"), _positive(args, "hours")
    gpu_class = args.get("gpu_class") or "the GPU class you need (list_sites shows them, e.g. GPU_A100)"
    earliest = args.get("earliest") or "now"
    text = f"""Book {gpus} GPU(s) for {hours} hour(s) on slotbroker, starting at {earliest} or later.

1. Call list_sites to see which sites have {gpu_class} and how many are free.
2. Call find_slot with one component, e.g. {{"components": [{{"name": "gpu", "count": 1,
   "resources": {{"<GPU class>": {gpus}}}}}], "earliest_start": "<ISO 8601 with offset>",
   "duration": {hours * 3600}}}. If no window comes back, read `explanation`: each blocker says what
   is short and the earliest start if it were relaxed; adjust (later start, other class, fewer GPUs
   per host with a larger count) and search again.
3. Call create_offers with the same request as `request`. Offers hold capacity for a few minutes only.
4. Pick one offer and call accept_offer with its id; the result is your lease. Call reject_offer on
   any offer you do not take if the set is still open.
5. To run work in it, call create_job with lease_id and a provisioner your role may use; watch it
   with get_job and job_logs.
6. When done, call cancel_lease so the capacity goes back to others.

Errors come back as tool errors with a `code` and JSON pointers naming the argument to fix; on
`rate_limited` wait the `retry_after` seconds before trying again."""
    return GetPromptResult(
        description=BOOK_GPUS.description,
        messages=[PromptMessage(role="user", content=TextContent(type="text", text=text))],
    )
