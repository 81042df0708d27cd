"""The tools: one public API call each (``extend_lease`` without a generation: two), described so an
agent can act on them.

Annotations say what a tool does to the broker: the read-only ones are ``readOnlyHint``; the ones that
take capacity or run work (``create_offers``, ``accept_offer``, ``extend_lease``, ``compact_lease``,
``compact_leases``, ``create_job``) are
destructive and not idempotent; giving capacity back (``reject_offer``, ``cancel_lease``, ``cancel_job``)
is destructive and idempotent, as the API answers a second call with the same state.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from mcp.types import CallToolResult, Tool, ToolAnnotations
from pydantic import BaseModel

from slotbroker.client import AsyncClient
from slotbroker.mcp import arguments as a
from slotbroker.mcp import summaries as say
from slotbroker.mcp.results import failed, ok, problem_dict
from slotbroker.mcp.sites import sites_summary
from slotbroker.wire.find_slot import FindSlotJob, FindSlotResult
from slotbroker.wire.jobs import JobLogs, JobOut
from slotbroker.wire.leases import (
    CompactionReport,
    CompactLeases,
    LeaseCompaction,
    LeaseList,
    LeaseView,
    UpdateLease,
)
from slotbroker.wire.offers import AcceptedLease, OfferSetView, OfferView
from slotbroker.wire.sites import SiteList

FIND_SLOT_WAIT_S = 60.0
Handler = Callable[[AsyncClient, dict[str, Any]], Awaitable[CallToolResult]]

READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
TAKES = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False
)
GIVES_BACK = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
)


@dataclass(frozen=True)
class ToolSpec:
    name: str
    title: str
    description: str
    input_schema: a.Schema
    output: type[BaseModel]
    annotations: ToolAnnotations
    run: Handler

    def tool(self) -> Tool:
        return Tool(
            name=self.name,
            title=self.title,
            description=self.description,
            input_schema=self.input_schema,
            output_schema=self.output.model_json_schema(mode="serialization"),
            annotations=self.annotations.model_copy(update={"title": self.title}),
        )


def _args(model: type[a.Arguments], raw: dict[str, Any]) -> Any:
    return model.model_validate(raw)


async def _list_sites(api: AsyncClient, raw: dict[str, Any]) -> CallToolResult:
    _args(a.NoArguments, raw)
    view = await api.list_sites()
    return ok(view, sites_summary(view))


async def _find_slot(api: AsyncClient, raw: dict[str, Any]) -> CallToolResult:
    got = await api.find_slot(raw)
    if isinstance(got, FindSlotJob):  # an expensive search runs as a job on the server
        job = await api.wait_find_slot(got, timeout=FIND_SLOT_WAIT_S)
        if job.result is None:
            error = job.error or {}
            code, detail = str(error.get("code", "find_slot_failed")), str(error.get("detail", job.status))
            return failed(problem_dict(500, code, f"find-slot job {job.id}: {detail}"))
        got = job.result
    return ok(got, say.found(got))


async def _create_offers(api: AsyncClient, raw: dict[str, Any]) -> CallToolResult:
    view = await api.create_offer_set(raw)
    return ok(view, say.offer_set(view))


async def _accept_offer(api: AsyncClient, raw: dict[str, Any]) -> CallToolResult:
    lease = await api.accept_offer(_args(a.OfferRef, raw).offer_id)
    return ok(lease, say.accepted(lease))


async def _reject_offer(api: AsyncClient, raw: dict[str, Any]) -> CallToolResult:
    view = await api.reject_offer(_args(a.OfferRef, raw).offer_id)
    return ok(view, say.offer(view))


async def _list_leases(api: AsyncClient, raw: dict[str, Any]) -> CallToolResult:
    page = await api.list_leases(**_args(a.ListLeases, raw).model_dump(exclude_none=True))
    return ok(page, say.leases(page))


async def _get_lease(api: AsyncClient, raw: dict[str, Any]) -> CallToolResult:
    view = await api.get_lease(_args(a.LeaseRef, raw).lease_id)
    return ok(view, say.lease(view))


async def _extend_lease(api: AsyncClient, raw: dict[str, Any]) -> CallToolResult:
    args: a.ExtendLease = _args(a.ExtendLease, raw)
    generation = args.generation
    if generation is None:
        generation = (await api.get_lease(args.lease_id)).generation
    change = UpdateLease(generation=generation, end=args.end, allow_host_swap=args.allow_host_swap)
    view = await api.update_lease(args.lease_id, change)
    return ok(view, say.lease(view))


async def _compact_lease(api: AsyncClient, raw: dict[str, Any]) -> CallToolResult:
    args: a.CompactLease = _args(a.CompactLease, raw)
    generation = args.generation
    if generation is None:
        generation = (await api.get_lease(args.lease_id)).generation
    moved = await api.compact_lease(
        args.lease_id, generation=generation, allow_host_swap=args.allow_host_swap
    )
    return ok(moved, say.compaction(moved))


async def _compact_leases(api: AsyncClient, raw: dict[str, Any]) -> CallToolResult:
    # the API's own request model: the same limits and messages as POST /v1/leases/compact
    args = CompactLeases.model_validate(raw)
    report = await api.compact_leases(
        args.leases, allow_host_swap=args.allow_host_swap, policy=args.policy.value, limit=args.limit
    )
    return ok(report, say.compactions(report))


async def _cancel_lease(api: AsyncClient, raw: dict[str, Any]) -> CallToolResult:
    args = _args(a.CancelLease, raw)
    view = await api.cancel_lease(args.lease_id, force=args.force)
    return ok(view, say.lease(view))


async def _create_job(api: AsyncClient, raw: dict[str, Any]) -> CallToolResult:
    view = await api.create_job(raw)
    return ok(view, say.job(view))


async def _get_job(api: AsyncClient, raw: dict[str, Any]) -> CallToolResult:
    view = await api.get_job(_args(a.JobRef, raw).job_id)
    return ok(view, say.job(view))


async def _job_logs(api: AsyncClient, raw: dict[str, Any]) -> CallToolResult:
    args: a.JobLogsArgs = _args(a.JobLogsArgs, raw)
    page = await api.job_logs(args.job_id, after=args.after, limit=args.limit)
    return ok(page, say.logs(page))


async def _cancel_job(api: AsyncClient, raw: dict[str, Any]) -> CallToolResult:
    view = await api.cancel_job(_args(a.JobRef, raw).job_id)
    return ok(view, say.job(view))


def _own(model: type[a.Arguments]) -> dict[str, Any]:
    """A tool whose arguments it reads itself (rather than sending them on as a body)."""
    return {"input_schema": a.schema_of(model)}


TOOLS = (
    ToolSpec(
        "list_sites",
        "List sites",
        "Sites with, per resource class, the capacity, what is free now and the most one host has free, "
        "and their hosts, links and ports. Start here to see where a request could fit.",
        output=SiteList,
        annotations=READ,
        run=_list_sites,
        **_own(a.NoArguments),
    ),
    ToolSpec(
        "find_slot",
        "Find windows",
        "Search windows where every component fits for the whole duration (nothing is held). The arguments "
        "are a find-slot request: components with resources per instance, earliest_start / latest_end "
        "(ISO 8601 with an offset) and a duration in seconds. When nothing fits, `explanation` says what "
        "blocks it and the earliest start if that were relaxed.",
        a.find_slot_schema(),
        FindSlotResult,
        READ,
        _find_slot,
    ),
    ToolSpec(
        "create_offers",
        "Hold offers",
        "Hold capacity: up to `max_offers` windows for `request` (a find-slot request), each held until it "
        "expires (minutes). Accept one with accept_offer, or reject_offer to free it at once. An EMPTY set "
        "carries the explanation of why nothing fits.",
        a.offer_set_schema(),
        OfferSetView,
        TAKES,
        _create_offers,
    ),
    ToolSpec(
        "accept_offer",
        "Book an offer",
        "Turn a held offer into a lease (the set's other offers are released). Quotas apply.",
        output=AcceptedLease,
        annotations=TAKES,
        run=_accept_offer,
        **_own(a.OfferRef),
    ),
    ToolSpec(
        "reject_offer",
        "Release an offer",
        "Release a held offer now (idempotent).",
        output=OfferView,
        annotations=GIVES_BACK,
        run=_reject_offer,
        **_own(a.OfferRef),
    ),
    ToolSpec(
        "list_leases",
        "List leases",
        "Your project's leases in creation order, a page at a time (pass next_cursor back as cursor).",
        output=LeaseList,
        annotations=READ,
        run=_list_leases,
        **_own(a.ListLeases),
    ),
    ToolSpec(
        "get_lease",
        "Read a lease",
        "One lease: status, times, items, generation and notices (404 if it is not your project's).",
        output=LeaseView,
        annotations=READ,
        run=_get_lease,
        **_own(a.LeaseRef),
    ),
    ToolSpec(
        "extend_lease",
        "Extend a lease",
        "Move a lease's end (longer takes more capacity; allowed shortly before its end). All or nothing.",
        output=LeaseView,
        annotations=TAKES,
        run=_extend_lease,
        **_own(a.ExtendLease),
    ),
    ToolSpec(
        "compact_lease",
        "Start a lease earlier",
        "Move a PENDING lease to its earliest possible start, as if it were gone from the calendar: never "
        "later, unchanged (moved=false, with a reason) when nothing earlier fits. Other hosts of the same "
        "site with the same traits may take it unless allow_host_swap=false.",
        output=LeaseCompaction,
        annotations=TAKES,
        run=_compact_lease,
        **_own(a.CompactLease),
    ),
    ToolSpec(
        "compact_leases",
        "Start several leases earlier",
        "Compact PENDING leases one after another, each on its own: `leases` (ids or names) in that "
        "order, or your project's PENDING leases earliest start first (at most `limit`). Each outcome "
        "says whether it moved, from when to when, or why not (no_earlier_window, due_now, not_pending, "
        "not_compactable, not_found).",
        a.schema_of(CompactLeases),
        CompactionReport,
        TAKES,
        _compact_leases,
    ),
    ToolSpec(
        "cancel_lease",
        "Cancel a lease",
        "Cancel a lease and give its capacity back at once (idempotent); a lease whose jobs still run "
        "needs force=true (they are stopped).",
        output=LeaseView,
        annotations=GIVES_BACK,
        run=_cancel_lease,
        **_own(a.CancelLease),
    ),
    ToolSpec(
        "create_job",
        "Run a job",
        "Run work with a provisioner, in a lease (`lease_id`) or as soon as possible (`offer_set`: the "
        "first offer that holds becomes the job's lease). Your role must be allowed the provisioner. "
        "Idempotent only when you give `id`.",
        a.create_job_schema(),
        JobOut,
        TAKES,
        _create_job,
    ),
    ToolSpec(
        "get_job",
        "Read a job",
        "A job's state, transitions, exit code and error.",
        output=JobOut,
        annotations=READ,
        run=_get_job,
        **_own(a.JobRef),
    ),
    ToolSpec(
        "job_logs",
        "Read job logs",
        "A job's log lines after id `after` (pass next_after back for more).",
        output=JobLogs,
        annotations=READ,
        run=_job_logs,
        **_own(a.JobLogsArgs),
    ),
    ToolSpec(
        "cancel_job",
        "Cancel a job",
        "Stop a job and release what it provisioned (idempotent); the lease stays yours.",
        output=JobOut,
        annotations=GIVES_BACK,
        run=_cancel_job,
        **_own(a.JobRef),
    ),
)
BY_NAME = {spec.name: spec for spec in TOOLS}
