"""Listings read page after page: a :class:`Pages` builder says how to fetch one page by cursor and
:class:`paged` makes it an iterator on the sync client and an async iterator on the async one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec, TypeVar, overload

from slotbroker.client._spec import (
    AsyncRunner,
    Call,
    SyncRunner,
)

P = ParamSpec("P")
Item = TypeVar("Item")


# -- paged listings: iterate every item, following next_cursor ---------------------------------------------
@dataclass(frozen=True)
class Pages(Generic[Item]):
    """A listing read page after page: ``page(cursor)`` is one page's call, decoded to (items, next)."""

    page: Callable[[str | None], Call[tuple[list[Item], str | None]]]


class paged(Generic[P, Item]):  # noqa: N801 - used like endpoint
    """A client method made from a :class:`Pages` builder: an iterator on the sync client, an async
    iterator on the async one, each following ``next_cursor`` until the last page."""

    def __init__(self, build: Callable[P, Pages[Item]]) -> None:
        self.build = build
        self.__doc__ = build.__doc__
        self.__name__ = build.__name__

    @overload
    def __get__(self, obj: SyncRunner, owner: type[Any] | None = None) -> Callable[P, Iterator[Item]]: ...
    @overload
    def __get__(
        self, obj: AsyncRunner, owner: type[Any] | None = None
    ) -> Callable[P, AsyncIterator[Item]]: ...
    @overload
    def __get__(self, obj: None, owner: type[Any] | None = None) -> paged[P, Item]: ...
    def __get__(self, obj: object, owner: type[Any] | None = None) -> Any:
        if obj is None:
            return self
        build = self.build
        run: Callable[[Call[tuple[list[Item], str | None]]], Any] = obj._run  # type: ignore[attr-defined]

        if isinstance(obj, AsyncRunner):

            async def aiterate(*args: P.args, **kwargs: P.kwargs) -> AsyncIterator[Item]:
                pages = build(*args, **kwargs)
                cursor: str | None = None
                while True:
                    items, cursor = await run(pages.page(cursor))
                    for item in items:
                        yield item
                    if cursor is None:
                        return

            aiterate.__doc__ = build.__doc__
            return aiterate

        def iterate(*args: P.args, **kwargs: P.kwargs) -> Iterator[Item]:
            pages = build(*args, **kwargs)
            cursor: str | None = None
            while True:
                items, cursor = run(pages.page(cursor))
                yield from items
                if cursor is None:
                    return

        iterate.__doc__ = build.__doc__
        return iterate
