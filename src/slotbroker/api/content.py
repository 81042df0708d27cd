"""JSON and YAML both ways, and request size limits, as one ASGI middleware.

Routes are written once, for JSON. A YAML request body is parsed here (safely: no arbitrary tags, no
aliases, so no "billion laughs") and handed on as JSON; a client that prefers YAML in ``Accept`` gets
the JSON response re-serialised as YAML. Bodies past the size limit are refused with 413 before they
are parsed, and media types we cannot read get 415, never a confusing validation error. Text the
stores cannot keep (``api/text_guard.py``) is refused with 422 here too, before any route runs, so no
route writes half a use case first. So is a body holding more than ``max_items`` values (every route but
those in ``large_paths``, which check their own): each value costs the route microseconds of parsing and
validation on the event loop, so the cap is what keeps that work short. YAML, which the pure-Python
parser reads slowly, and JSON long enough to need counting are parsed in a worker thread: the event loop
keeps answering other requests (health checks among them) meanwhile.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import yaml
from starlette.concurrency import run_in_threadpool

from slotbroker.api.problems import (
    MAX_ERRORS,
    PROBLEM_JSON,
    TOO_DEEP,
    FieldProblem,
    invalid_status,
    problem_response,
)
from slotbroker.api.text_guard import body_problems, counted, path_problems, query_problems

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
JSON_TYPES = ("application/json", PROBLEM_JSON)
THREAD_ABOVE = 1 << 16  # JSON bodies past this many bytes are parsed off the event loop


class NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases: a few bytes of anchors can otherwise expand to gigabytes."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.MarkedYAMLError(
                "while composing", None, "YAML aliases are not accepted", event.start_mark
            )
        return super().compose_node(parent, index)


def _json_default(value: object) -> str:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    raise TypeError(f"cannot represent {type(value).__name__} in JSON")


def parse_yaml(text: bytes) -> Any:
    return yaml.load(text, Loader=NoAliasLoader)


def yaml_to_json(text: bytes) -> bytes:
    return json.dumps(parse_yaml(text), default=_json_default).encode()


async def checked(body: bytes, max_items: int | None) -> list[FieldProblem]:
    """``body_problems``, in a worker thread when it parses a body large enough to hold the loop up."""
    if len(body) > THREAD_ABOVE or counted(body, max_items):
        return await run_in_threadpool(body_problems, body, max_items)
    return body_problems(body, max_items)


def dump_yaml(data: Any) -> bytes:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode()


def media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def accept_ranks(accept: str) -> list[tuple[str, float]]:
    """The media ranges of an Accept header, lower-cased, each with its quality (default 1; a broken
    q counts as 0)."""
    out = []
    for part in accept.split(","):
        kind, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        out.append((kind.lower(), q))
    return out


def prefers_yaml(accept: str) -> bool:
    """True when the Accept header ranks a YAML type above JSON (ties go to JSON)."""
    best_yaml = best_json = -1.0
    for kind, q in accept_ranks(accept):
        if kind in YAML_TYPES:
            best_yaml = max(best_yaml, q)
        elif kind in (*JSON_TYPES, "*/*", "application/*"):
            best_json = max(best_json, q)
    return best_yaml > 0 and best_yaml > best_json


YAML_FIRST_PREFIXES = ("/ivoa",)  # the IVOA ExecutionBroker: YAML unless the client prefers JSON


def yaml_first(accept: str) -> bool | None:
    """The IVOA negotiation: True for YAML, False for JSON, None when neither is acceptable (406).

    No ``Accept``, a wildcard, or JSON and YAML at the same quality give YAML; JSON only when it has the
    higher quality. An exact type outranks a wildcard for its own quality (RFC 9110, 12.5.1).
    """
    if not accept.strip():
        return True
    exact: dict[str, float] = {}
    wild = 0.0
    for kind, q in accept_ranks(accept):
        side = (
            "json"
            if kind in JSON_TYPES or kind.endswith("+json")
            else "yaml"
            if kind in YAML_TYPES or kind.endswith("+yaml")
            else None
        )
        if side is not None:
            exact[side] = max(exact.get(side, 0.0), q)
        elif kind in ("*/*", "application/*"):
            wild = max(wild, q)
    q_json, q_yaml = exact.get("json", wild), exact.get("yaml", wild)
    if q_json <= 0 and q_yaml <= 0:
        return None
    return q_yaml >= q_json


def replayed(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands on ``body`` (already read) as one message, then defers to ``receive``."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class ContentMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body: int,
        max_items: int | None = None,
        large_paths: dict[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.max_items = max_items
        self.large_paths = large_paths or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        limit = self.large_paths.get(scope["path"], self.max_body)
        max_items = None if scope["path"] in self.large_paths else self.max_items
        path = scope["path"]

        yaml_out = prefers_yaml(headers.get("accept", ""))
        problems_too = path.startswith(YAML_FIRST_PREFIXES)
        if problems_too:
            negotiated = yaml_first(headers.get("accept", ""))
            if negotiated is None:
                await problem_response(
                    406,
                    "not_acceptable",
                    "the IVOA endpoints answer application/yaml or application/json; Accept names neither",
                    instance=path,
                )(scope, receive, send)
                return
            yaml_out = negotiated
        if yaml_out:
            send = _YamlResponder(send, problems=problems_too)

        async def reply(status: int, code: str, detail: str, **kw: Any) -> None:
            await problem_response(status, code, detail, instance=path, **kw)(scope, receive, send)

        async def refuse(bad: list[FieldProblem]) -> None:
            detail = f"{bad[0].pointer or 'request'}: {bad[0].detail}"
            if len(bad) > MAX_ERRORS:
                detail += f" ({len(bad)} problems; the first {MAX_ERRORS} are listed)"
            await reply(invalid_status(path), "validation_error", detail, errors=bad[:MAX_ERRORS])

        bad = path_problems(scope) + query_problems(scope.get("query_string", b""))
        if bad:
            await refuse(bad)
            return
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                await reply(400, "bad_request", "Content-Length is not a number")
                return
            if int(declared) > limit:
                await reply(413, "payload_too_large", f"request body over the {limit}-byte limit")
                return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                await reply(413, "payload_too_large", f"request body over the {limit}-byte limit")
                return

        ctype = media_type(headers.get("content-type"))
        if body and ctype in YAML_TYPES:
            try:
                body = bytearray(await run_in_threadpool(yaml_to_json, bytes(body)))
            except yaml.YAMLError as exc:
                await reply(400, "malformed_body", f"the request body is not valid YAML: {exc}")
                return
            except RecursionError:  # the same answer as JSON this deep (problems.py)
                await reply(400, "malformed_body", TOO_DEEP)
                return
            except (TypeError, ValueError) as exc:  # !!binary, !!set, a date as a key ...
                await reply(400, "malformed_body", f"the YAML body has no JSON equivalent: {exc}")
                return
            scope = dict(scope)
            scope["headers"] = [
                (k, v) for k, v in scope["headers"] if k.lower() not in (b"content-type", b"content-length")
            ]
            scope["headers"] += [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
        elif body and ctype and ctype not in JSON_TYPES and not ctype.endswith("+json"):
            await reply(
                415,
                "unsupported_media_type",
                f"cannot read {ctype}; send application/json or application/yaml",
            )
            return
        bad = await checked(bytes(body), max_items) if body else []
        if bad:
            await refuse(bad)
            return

        await self.app(scope, replayed(bytes(body), receive), send)


class _YamlResponder:
    """Buffers a JSON response and re-sends it as YAML; with ``problems``, problem documents as well
    (``application/problem+yaml``)."""

    def __init__(self, send: Send, *, problems: bool = False) -> None:
        self.send = send
        self.problems = problems
        self.start: Message | None = None
        self.chunks = bytearray()

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
            return
        if message["type"] != "http.response.body" or self.start is None:
            await self.send(message)
            return
        self.chunks += message.get("body", b"")
        if message.get("more_body", False):
            return
        start, body = self.start, bytes(self.chunks)
        headers = [(k, v) for k, v in start.get("headers", [])]
        ctype = next((v.decode() for k, v in headers if k.lower() == b"content-type"), "")
        kind = media_type(ctype)
        target = (
            b"application/problem+yaml"
            if self.problems and kind == PROBLEM_JSON
            else b"application/yaml"
            if kind in JSON_TYPES
            else None
        )
        if target is not None and body:
            body = dump_yaml(json.loads(body))
            headers = [(k, v) for k, v in headers if k.lower() not in (b"content-type", b"content-length")]
            headers += [(b"content-type", target), (b"content-length", str(len(body)).encode())]
        await self.send({**start, "headers": headers})
        await self.send({"type": "http.response.body", "body": body, "more_body": False})
