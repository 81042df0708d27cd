"""Refuse text the stores cannot keep, in every string of a request, before any route runs.

PostgreSQL ``text`` cannot hold U+0000, and no UTF-8 encoder can write an unpaired surrogate
(U+D800-U+DFFF, which JSON's ``\\ud800`` and YAML's ``"\\ud800"`` escapes can produce): either reaches
the driver as a 500, possibly after part of a use case has been written. So the content middleware asks
this module about the path, the query and the (JSON, or YAML turned JSON) body and answers 422 naming
the field. Other control characters are valid text on both backends and stay the business of each
field's own rules.

The checks are cheap on the requests that matter: the body is only parsed when its bytes hold an escape
that can decode to such a character, the query only when it holds ``%00``.
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


def body_problems(body: bytes) -> list[FieldProblem]:
    """Every string (keys too) of a JSON body holding U+0000 or an unpaired surrogate, by pointer.

    A body that is not JSON gives none: the route's own parser answers for it.
    """
    if not BODY_HINT.search(body):
        return []
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return []
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
