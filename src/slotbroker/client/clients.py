"""The sync :class:`Client` and the async :class:`AsyncClient`.

Both inherit every API method from :class:`~slotbroker.client.endpoints.Endpoints`; they only differ in
``_run``: how one :class:`~slotbroker.client._spec.Call` is sent, retried and slept on.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import anyio
import httpx

import slotbroker
from slotbroker.client import inventory_calls, search_calls
from slotbroker.client._spec import AsyncRunner, Call, Id, SyncRunner, finish
from slotbroker.client.endpoints import Endpoints
from slotbroker.client.retry import Attempts, RetryPolicy
from slotbroker.domain.providers import ProviderKind
from slotbroker.wire import providers as views
from slotbroker.wire.find_slot import FindSlotJob

T = TypeVar("T")
DEFAULT_TIMEOUT = 30.0
FINISHED = ("done", "failed")
USER_AGENT = f"slotbroker-client/{slotbroker.__version__}"


class _Config:
    """What both clients share: where to send, how to authenticate, how to retry."""

    def __init__(self, base_url: str, token: str | None, retry: RetryPolicy | None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.retry = retry if retry is not None else RetryPolicy()

    def _request(self, call: Call[Any]) -> dict[str, Any]:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        if call.headers:
            headers.update(call.headers)
        request: dict[str, Any] = {
            "method": call.method,
            "url": self.base_url + call.path,
            "headers": headers,
            "params": call.params,
        }
        if call.json is not None:
            request["json"] = call.json
        return request

    def _attempts(self, call: Call[Any]) -> Attempts:
        return Attempts(self.retry, call.method, retryable=call.retry)

    @staticmethod
    def _job_id(job: FindSlotJob | Id) -> Id:
        return job.id if isinstance(job, FindSlotJob) else job

    @staticmethod
    def _next_poll(advertised: float | None, interval: float, deadline: float, job_id: Id) -> float:
        """The wait before the next poll: the server's Retry-After, else ``interval``, within the deadline."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"find-slot job {job_id} did not finish in time")
        return min(advertised if advertised is not None else interval, left)

    @staticmethod
    def _page_call(cursor: str | None, page_size: int, filters: dict[str, Any]) -> Call[views.ProviderList]:
        return inventory_calls.list_providers(cursor=cursor, limit=page_size, **filters)


class Client(_Config, SyncRunner, Endpoints):
    """Synchronous slotbroker API client.

    ``transport`` (e.g. a test transport) or a ready ``http_client`` may be passed; a client you pass
    is not closed by :meth:`close`. ``sleep`` is injectable so tests can observe retry waits.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(base_url, token, retry)
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout, transport=transport)
        self._sleep = sleep

    def _run(self, call: Call[T]) -> T:
        attempts = self._attempts(call)
        request = self._request(call)
        while True:
            attempts.started()
            started = time.monotonic()
            try:
                response = self._http.request(**request)
            except httpx.TransportError as exc:
                delay = attempts.after_error(exc, time.monotonic() - started)
                if delay is None:
                    raise
            else:
                delay = attempts.after_response(response, time.monotonic() - started)
                if delay is None:
                    return finish(call, response, attempts.count)
            self._sleep(delay)

    def iter_providers(
        self,
        *,
        kind: Sequence[ProviderKind | str] | None = None,
        parent: Id | None = None,
        trait: Sequence[str] | None = None,
        member_of: Sequence[str] | None = None,
        name: str | None = None,
        page_size: int = 100,
    ) -> Iterator[views.ProviderView]:
        """Every matching provider, following ``next_cursor`` page after page."""
        filters = {"kind": kind, "parent": parent, "trait": trait, "member_of": member_of, "name": name}
        cursor: str | None = None
        while True:
            page = self._run(self._page_call(cursor, page_size, filters))
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def wait_find_slot(
        self, job: FindSlotJob | Id, *, timeout: float = 120.0, interval: float = 0.5
    ) -> FindSlotJob:
        """Poll a find-slot job until it is ``done`` or ``failed``, waiting what the server's
        ``Retry-After`` says (else ``interval``); ``TimeoutError`` after ``timeout`` seconds."""
        job_id = self._job_id(job)
        deadline = time.monotonic() + timeout
        while True:
            state, advertised = self._run(search_calls.poll_find_slot_job(job_id))
            if state.status in FINISHED:
                return state
            self._sleep(self._next_poll(advertised, interval, deadline, job_id))

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncClient(_Config, AsyncRunner, Endpoints):
    """Asynchronous slotbroker API client: the same methods as :class:`Client`, awaitable.

    Pass ``transport=httpx.ASGITransport(app)`` to talk to an app in-process.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        super().__init__(base_url, token, retry)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout, transport=transport)
        self._sleep = sleep

    async def _run(self, call: Call[T]) -> T:
        attempts = self._attempts(call)
        request = self._request(call)
        while True:
            attempts.started()
            started = time.monotonic()
            try:
                response = await self._http.request(**request)
            except httpx.TransportError as exc:
                delay = attempts.after_error(exc, time.monotonic() - started)
                if delay is None:
                    raise
            else:
                delay = attempts.after_response(response, time.monotonic() - started)
                if delay is None:
                    return finish(call, response, attempts.count)
            await self._sleep(delay)

    async def iter_providers(
        self,
        *,
        kind: Sequence[ProviderKind | str] | None = None,
        parent: Id | None = None,
        trait: Sequence[str] | None = None,
        member_of: Sequence[str] | None = None,
        name: str | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[views.ProviderView]:
        """Every matching provider, following ``next_cursor`` page after page."""
        filters = {"kind": kind, "parent": parent, "trait": trait, "member_of": member_of, "name": name}
        cursor: str | None = None
        while True:
            page = await self._run(self._page_call(cursor, page_size, filters))
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def wait_find_slot(
        self, job: FindSlotJob | Id, *, timeout: float = 120.0, interval: float = 0.5
    ) -> FindSlotJob:
        """Poll a find-slot job until it is ``done`` or ``failed``, waiting what the server's
        ``Retry-After`` says (else ``interval``); ``TimeoutError`` after ``timeout`` seconds."""
        job_id = self._job_id(job)
        deadline = time.monotonic() + timeout
        while True:
            state, advertised = await self._run(search_calls.poll_find_slot_job(job_id))
            if state.status in FINISHED:
                return state
            await self._sleep(self._next_poll(advertised, interval, deadline, job_id))

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
