"""Refuse, before any route runs, text the stores cannot keep and bodies holding too many values.

PostgreSQL ``text`` cannot hold U+0000, and no UTF-8 encoder can write an unpaired surrogate
(U+D800-U+DFFF, which JSON's ``\\ud800`` and YAML's ``"\\ud800"`` escapes can produce): either reaches
the driver as a 500, possibly after part of a use case has been written. So the content middleware asks
this module about the path, the query and the (JSON, or YAML turned JSON) body and answers 422 naming
the field. Other control characters are valid text on both backends and stay the business of each
field's own rules.

A body is also refused (422 naming the list) when it holds more values than the content middleware's
cap: what the route then parses and validates on the event loop (a few microseconds per value, more for
each wrong one) stays a small fraction of a second, whatever the body's bytes. Topology documents are
exempt: their route reads them in a worker thread with caps of its own.

The checks are cheap on the requests that matter: the body is only parsed when its bytes hold an escape
that can decode to such a character or could hold more values than the cap (``n`` bytes of JSON hold at
most ``n / 2``: each value takes a byte and a comma or bracket before it; and at most as many as its
commas and opening brackets), the query only when it holds ``%00``. The content middleware runs the
parse in a worker thread.
"""

from __future__ import annotations

import json
import re
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.routing import Match

from slotbroker.api.problems import FieldProblem, flat_routes
from slotbroker.domain.errors import pointer

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# JSON text can only decode to U+0000 or a surrogate through one of these escapes (raw control
# characters are invalid JSON, raw surrogates invalid UTF-8).
BODY_HINT = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
DETAIL = "text may not contain U+0000 or unpaired surrogates (U+D800-U+DFFF)"
KEY_DETAIL = "keys may not contain U+0000 or unpaired surrogates (U+D800-U+DFFF)"
NESTED = {list, dict}  # what json.loads builds containers as


def path_problems(scope: MutableMapping[str, Any]) -> list[FieldProblem]:
    """NUL in the (percent-decoded) path: named ``#/path/NAME`` after the route that would take it."""
    if "\x00" not in scope["path"]:
        return []
    app = scope.get("app")
    for route in flat_routes(getattr(getattr(app, "router", None), "routes", ())):
        match, child = route.matches(scope)
        if match == Match.NONE:
            continue
        names = [k for k, v in child.get("path_params", {}).items() if UNSTORABLE.search(str(v))]
        return [FieldProblem(pointer=f"#/path/{n}", detail=DETAIL) for n in names]
    return [FieldProblem(pointer="#/path", detail=DETAIL)]


def query_problems(query_string: bytes) -> list[FieldProblem]:
    """NUL in a query parameter's value (``#/query/NAME``) or name (``#/query``)."""
    if b"%00" not in query_string and b"\x00" not in query_string:
        return []
    out = []
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):  # as Starlette
        if "\x00" in name:
            out.append(FieldProblem(pointer="#/query", detail=KEY_DETAIL))
        elif "\x00" in value:
            out.append(FieldProblem(pointer=f"#/query/{name}", detail=DETAIL))
    return out


def counted(body: bytes, max_items: int | None) -> bool:
    """Whether ``body`` could hold more than ``max_items`` values (None: no cap), judged by its bytes:
    each value but the first of a list or map follows a comma, so there are at most as many as commas
    and opening brackets (and those inside strings only raise the bound)."""
    if max_items is None or len(body) <= 2 * max_items:
        return False
    return body.count(b",") + body.count(b"[") + body.count(b"{") > max_items


def body_problems(body: bytes, max_items: int | None = None) -> list[FieldProblem]:
    """The parts of a JSON body past ``max_items`` values (``crowded``), else every unstorable string.

    A body that is not JSON gives none: the route's own parser answers for it.
    """
    count = counted(body, max_items)
    hint = BODY_HINT.search(body) is not None
    if not count and not hint:
        return []
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return []
    crowd = crowded(data, max_items) if count and max_items is not None else []
    return crowd or (unstorable(data) if hint else [])


def crowded(data: Any, cap: int) -> list[FieldProblem]:
    """Each list or map holding more than ``cap`` values (entries and members, at any depth) none of
    whose own entries does: the smallest parts of the document that are too big, by pointer."""
    out: list[FieldProblem] = []
    if not isinstance(data, list | dict):
        return out
    # iterative (the depth is the client's to choose); a frame is [path, nested left, values, any over]
    stack: list[list[Any]] = [[(), _nested(data), len(data), False]]
    while stack:
        frame = stack[-1]
        if frame[1]:
            key, value = frame[1].pop()
            nested = _nested(value)
            if nested:
                stack.append([(*frame[0], key), nested, len(value), False])
            else:  # flat: its entries are its values
                frame[2] += len(value)
                if len(value) > cap:
                    frame[3] = True
                    out.append(_too_many((*frame[0], key), len(value), cap))
            continue
        at, _, size, inner_over = stack.pop()
        if size > cap and not inner_over:
            out.append(_too_many(at, size, cap))
        if stack:
            stack[-1][2] += size
            stack[-1][3] = stack[-1][3] or size > cap
    return sorted(out, key=lambda p: p.pointer)


def _too_many(at: tuple[str | int, ...], size: int, cap: int) -> FieldProblem:
    return FieldProblem(
        pointer=pointer(*at), detail=f"holds {size} values; a request body may hold at most {cap}"
    )


def _nested(value: list[Any] | dict[str, Any]) -> list[tuple[str | int, Any]]:
    """The non-empty lists and maps among the entries of ``value``, with their keys: only they need a
    look inside, the rest count by ``len`` (the type test at C speed first, as most entries are not)."""
    if NESTED.isdisjoint(map(type, value.values() if isinstance(value, dict) else value)):
        return []
    pairs = value.items() if isinstance(value, dict) else enumerate(value)
    return [(k, v) for k, v in pairs if v and type(v) in NESTED]


def unstorable(data: Any) -> list[FieldProblem]:
    """Every string (keys too) of a parsed JSON document holding U+0000 or an unpaired surrogate."""
    out: list[FieldProblem] = []
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), data)]
    while stack:  # iterative: the depth is the client's to choose
        at, value = stack.pop()
        if isinstance(value, str):
            if UNSTORABLE.search(value):
                out.append(FieldProblem(pointer=pointer(*at), detail=DETAIL))
        elif isinstance(value, dict):
            if any(UNSTORABLE.search(k) for k in value):
                out.append(FieldProblem(pointer=pointer(*at), detail=KEY_DETAIL))
            stack.extend(((*at, k), v) for k, v in value.items() if not UNSTORABLE.search(k))
        elif isinstance(value, list):
            stack.extend(((*at, i), v) for i, v in enumerate(value))
    return sorted(out, key=lambda p: p.pointer)
