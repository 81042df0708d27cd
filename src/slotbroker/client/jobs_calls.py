"""The planner's job endpoints and the job event stream (server-sent events), each described once
(:mod:`slotbroker.client.endpoints` makes them methods)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from slotbroker.client._spec import (
    AsyncRunner,
    Call,
    Id,
    Raw,
    body,
    finish,
    model,
    no_content,
    path,
    query,
)
from slotbroker.client.paging import Pages
from slotbroker.wire.jobs import CreateJob, JobEvent, JobList, JobLogs, JobOut


# -- jobs (the planner, docs/planner.md) ------------------------------------------------------------------
def create_job(job: CreateJob | Raw) -> Call[JobOut]:
    """Create a job in a lease (``lease_id``) or as soon as possible (``offer_set``: offers are made and
    the first that holds becomes the job's lease). Idempotent by ``id``."""
    return Call("POST", "/v1/jobs", model(JobOut), json=body(job))


def list_jobs(
    *,
    state: Sequence[str] | None = None,
    project: str | None = None,
    lease: Id | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> Call[JobList]:
    """One page of jobs, newest first (keyset); pass ``next_cursor`` back as ``cursor``."""
    params = query(
        state=list(state) if state is not None else None,
        project=project,
        lease=lease,
        cursor=cursor,
        limit=limit,
    )
    return Call("GET", "/v1/jobs", model(JobList), params=params)


def get_job(job_id: str) -> Call[JobOut]:
    return Call("GET", path("/v1/jobs/{}", job_id), model(JobOut))


def cancel_job(job_id: str) -> Call[JobOut]:
    """Cancel a job (idempotent); the job as it is now (``cancel_requested`` until torn down)."""
    return Call("POST", path("/v1/jobs/{}/cancel", job_id), model(JobOut))


def job_logs(job_id: str, *, after: int | None = None, limit: int | None = None) -> Call[JobLogs]:
    """The job's log lines after id ``after`` (``next_after``: pass back for more)."""
    return Call(
        "GET", path("/v1/jobs/{}/logs", job_id), model(JobLogs), params=query(after=after, limit=limit)
    )


def iter_jobs(
    *,
    state: Sequence[str] | None = None,
    project: str | None = None,
    lease: Id | None = None,
    page_size: int = 100,
) -> Pages[JobOut]:
    """Every matching job (see :func:`list_jobs`), newest first, ``page_size`` per request."""

    def page(cursor: str | None) -> Call[tuple[list[JobOut], str | None]]:
        call = list_jobs(state=state, project=project, lease=lease, cursor=cursor, limit=page_size)

        def decode(response: httpx.Response) -> tuple[list[JobOut], str | None]:
            got = call.decode(response)
            return got.items, got.next_cursor

        return Call(call.method, call.path, decode, params=call.params)

    return Pages(page)


@dataclass(frozen=True)
class SseEvent:
    """One server-sent event: ``event`` (``state``, ``end``, ``timeout``), its ``id`` and JSON ``data``."""

    event: str
    data: dict[str, Any]
    id: str | None = None

    @property
    def transition(self) -> JobEvent | None:
        return JobEvent.model_validate(self.data) if self.event == "state" else None


class _SseParser:
    def __init__(self) -> None:
        self.event, self.id, self.data = "message", None, []  # type: tuple[str, str | None, list[str]]

    def feed(self, line: str) -> SseEvent | None:
        if not line:
            if not self.data:
                self.event = "message"
                return None
            out = SseEvent(self.event, json.loads("\n".join(self.data)), self.id)
            self.event, self.id, self.data = "message", None, []
            return out
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self.event = value
        elif name == "data":
            self.data.append(value)
        elif name == "id":
            self.id = value
        return None


def job_events_call(
    job_id: str, *, timeout: float | None = None, last_event_id: str | None = None
) -> Call[None]:
    """The request of :func:`job_events` (its answer is read as a stream, not decoded at once)."""
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    params = query(timeout=timeout)
    return Call(
        "GET", path("/v1/jobs/{}/events", job_id), no_content, params=params, retry=False, headers=headers
    )


class streamed:  # noqa: N801 - used like endpoint
    """``job_events``: an iterator of :class:`SseEvent` on the sync client, an async iterator on the async
    one, read as the server sends them; it ends when the server ends the stream (job terminal / timeout).
    Errors before the stream starts raise the typed problem (e.g. :class:`NotFoundError`)."""

    def __get__(self, obj: object, owner: type[Any] | None = None) -> Any:
        if obj is None:
            return self
        http: Any = obj._http  # type: ignore[attr-defined]
        request: Callable[[Call[Any]], dict[str, Any]] = obj._request  # type: ignore[attr-defined]

        if isinstance(obj, AsyncRunner):

            async def aiterate(
                job_id: str, *, timeout: float | None = None, last_event_id: str | None = None
            ) -> AsyncIterator[SseEvent]:
                call = job_events_call(job_id, timeout=timeout, last_event_id=last_event_id)
                async with http.stream(**request(call)) as response:
                    if not response.is_success:
                        await response.aread()
                        finish(call, response, 1)
                    parser = _SseParser()
                    async for line in response.aiter_lines():
                        event = parser.feed(line)
                        if event is not None:
                            yield event

            return aiterate

        def iterate(
            job_id: str, *, timeout: float | None = None, last_event_id: str | None = None
        ) -> Iterator[SseEvent]:
            call = job_events_call(job_id, timeout=timeout, last_event_id=last_event_id)
            with http.stream(**request(call)) as response:
                if not response.is_success:
                    response.read()
                    finish(call, response, 1)
                parser = _SseParser()
                for line in response.iter_lines():
                    event = parser.feed(line)
                    if event is not None:
                        yield event

        return iterate
