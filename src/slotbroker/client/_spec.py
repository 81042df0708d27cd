"""Request specs shared by the sync and async clients.

Each endpoint is described once, as a function returning a :class:`Call` (method, path, query, body
and how to decode the answer). :class:`endpoint` turns such a function into a method of both clients:
on a :class:`SyncRunner` it returns the decoded result, on an :class:`AsyncRunner` an awaitable of it.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, ParamSpec, TypeVar, overload
from urllib.parse import quote
from uuid import UUID

import httpx
from pydantic import BaseModel, TypeAdapter

from slotbroker.client.errors import error_from_response

T = TypeVar("T")
P = ParamSpec("P")
M = TypeVar("M", bound=BaseModel)

Raw = Mapping[str, Any]
"""A request body as plain JSON data, sent without client-side validation."""
Id = str | UUID


@dataclass(frozen=True)
class Call(Generic[T]):
    """One HTTP request and the decoder of its successful answer."""

    method: str
    path: str
    decode: Callable[[httpx.Response], T]
    params: Mapping[str, Any] | None = None
    json: Any = None
    retry: bool = True
    headers: Mapping[str, str] | None = None


def path(template: str, *parts: Id) -> str:
    """Fill ``{}`` placeholders with URL-quoted parts."""
    return template.format(*(quote(str(p), safe="") for p in parts))


def body(value: BaseModel | Raw) -> Any:
    """A request model as JSON (only the fields you set), or a mapping sent as it is."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_unset=True)
    return dict(value)


def query(**params: Any) -> dict[str, Any]:
    """Query parameters without the ``None`` ones; sequences become repeated keys, UUIDs strings."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, list | tuple):
            out[key] = [str(v) for v in value]
        else:
            out[key] = str(value)
    return out


def model(cls: type[M]) -> Callable[[httpx.Response], M]:
    return lambda response: cls.model_validate_json(response.content)


def list_of(cls: type[M]) -> Callable[[httpx.Response], list[M]]:
    adapter: TypeAdapter[list[M]] = TypeAdapter(list[cls])  # type: ignore[valid-type]
    return lambda response: adapter.validate_json(response.content)


def no_content(response: httpx.Response) -> None:
    return None


def text(response: httpx.Response) -> str:
    return response.text


def finish(call: Call[T], response: httpx.Response, attempts: int) -> T:
    """Decode a success or raise the typed problem."""
    if response.is_success:
        return call.decode(response)
    raise error_from_response(response, attempts=attempts)


class SyncRunner:
    def _run(self, call: Call[T]) -> T:
        raise NotImplementedError


class AsyncRunner:
    async def _run(self, call: Call[T]) -> T:
        raise NotImplementedError


class endpoint(Generic[P, T]):  # noqa: N801 - used like a decorator
    """A client method made from a :class:`Call` builder: sync or async depending on the client."""

    def __init__(self, build: Callable[P, Call[T]]) -> None:
        self.build = build
        functools.update_wrapper(self, build)  # type: ignore[arg-type]

    @overload
    def __get__(self, obj: SyncRunner, owner: type[Any] | None = None) -> Callable[P, T]: ...
    @overload
    def __get__(self, obj: AsyncRunner, owner: type[Any] | None = None) -> Callable[P, Awaitable[T]]: ...
    @overload
    def __get__(self, obj: None, owner: type[Any] | None = None) -> endpoint[P, T]: ...
    def __get__(self, obj: object, owner: type[Any] | None = None) -> Any:
        if obj is None:
            return self
        build = self.build
        run: Callable[[Call[T]], Any] = obj._run  # type: ignore[attr-defined]

        @functools.wraps(build)
        def method(*args: P.args, **kwargs: P.kwargs) -> Any:
            return run(build(*args, **kwargs))

        return method


Instant = datetime | str
"""A point in time: an aware ``datetime`` or an ISO 8601 string with an offset."""


def iso(value: Instant) -> str:
    """An instant as the API takes it (ISO 8601)."""
    return value.isoformat() if isinstance(value, datetime) else value
