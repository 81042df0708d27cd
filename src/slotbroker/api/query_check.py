"""Refuse query parameters a route does not declare.

A misspelt filter (``?site=`` for ``?kind=``) that is silently ignored answers a different question
than the one asked, so an unknown parameter is a validation error naming it (``#/query/NAME``) with
the closest declared name as a hint. Installed once as an app-level dependency; the FABRIC routes
answer 400 through the usual ``BAD_REQUEST_PREFIXES`` mapping.
"""

from __future__ import annotations

import difflib
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError

CACHE = "_slotbroker_query_names"  # kept on the route itself: computed once, gone with its app


def declared_query(route: Any) -> frozenset[str]:
    """The query parameter names ``route`` (and its dependencies) declare, by alias."""
    if route is None:
        return frozenset()
    names: frozenset[str] | None = getattr(route, CACHE, None)
    if names is None:
        found: set[str] = set()
        todo = [getattr(route, "dependant", None)]
        while todo:
            dependant = todo.pop()
            if dependant is not None:
                found.update(getattr(p, "validation_alias", None) or p.alias for p in dependant.query_params)
                todo.extend(dependant.dependencies)
        names = frozenset(found)
        setattr(route, CACHE, names)
    return names


def hint(name: str, known: frozenset[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    if close:
        return f"unknown query parameter; did you mean `{close[0]}`?"
    if known:
        return "unknown query parameter; known: " + ", ".join(f"`{k}`" for k in sorted(known))
    return "unknown query parameter; this route takes none"


async def reject_unknown_query(request: Request) -> None:
    """Raise a validation error for every query key the matched route does not declare."""
    if not request.query_params:
        return
    known = declared_query(request.scope.get("route"))
    unknown = [k for k in dict.fromkeys(request.query_params.keys()) if k not in known]
    if unknown:
        raise RequestValidationError(
            [
                {"type": "extra_forbidden", "loc": ("query", k), "msg": hint(k, known), "input": None}
                for k in unknown
            ]
        )
