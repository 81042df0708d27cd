"""Reading a client's document field by field, collecting every error with its JSON pointer (400) and
every readable-but-unservable point (result NO) instead of stopping at the first."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from slotbroker.domain.errors import FieldError
from slotbroker.services.protocols.ivoa.vocabulary import (
    COMPONENT_FIELDS,
    CURRENT_BASE,
    KINDS,
    META_FIELDS,
    canonical_kind,
    kind_uri,
)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class Reader:
    def __init__(self, now_s: int) -> None:
        self.now = now_s
        self.errors: list[FieldError] = []
        self.notes: list[tuple[str, str]] = []
        self.refusals: list[str] = []

    def fail(self, where: str, detail: str) -> None:
        self.errors.append(FieldError(where, f"{where.lstrip('/') or 'body'}: {detail}"))

    def mapping(self, value: Any, where: str) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.fail(where, "must be an object")
            return None
        return value

    def fields(self, obj: dict[str, Any], allowed: frozenset[str], where: str) -> None:
        for key in obj:
            if key not in allowed:
                self.fail(f"{where}/{key}", f"unknown field {key!r} (allowed: {', '.join(sorted(allowed))})")

    def text(self, obj: dict[str, Any], key: str, where: str) -> str | None:
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            self.fail(f"{where}/{key}", "must be a string")
            return None
        return value

    def kind(self, obj: dict[str, Any], group: str, where: str) -> tuple[str, str] | None:
        """(canonical uri, short name) of the component's kind."""
        raw = obj.get("kind")
        if raw is None:
            self.fail(
                f"{where}/kind",
                f"required: a {group} kind URI such as {kind_uri(group, sorted(KINDS[group])[0])}",
            )
            return None
        if not isinstance(raw, str):
            self.fail(f"{where}/kind", "must be a string (a kind URI)")
            return None
        uri = canonical_kind(raw, group)
        if uri is None:
            known = ", ".join(kind_uri(group, n) for n in sorted(KINDS[group]))
            self.fail(
                f"{where}/kind", f"unknown {group} kind {raw!r}; known: {known} (or their -1.0 aliases)"
            )
            return None
        return uri, uri.removeprefix(f"{CURRENT_BASE}{group}/").removesuffix(".yaml")

    def component(
        self, obj: dict[str, Any], group: str, extra: dict[str, frozenset[str]] | frozenset[str], where: str
    ) -> dict[str, Any]:
        """Kind, meta (name, description) and the kind's own fields, canonicalised for the echo."""
        got = self.kind(obj, group, where)
        own = extra if isinstance(extra, frozenset) else extra.get(got[1] if got else "", frozenset())
        allowed = COMPONENT_FIELDS | own | {"name"}
        if not isinstance(extra, frozenset) and got is None:
            allowed = COMPONENT_FIELDS | frozenset().union(*extra.values()) | {"name"}
        self.fields(obj, allowed, where)
        out: dict[str, Any] = {"kind": got[0] if got else obj.get("kind")}
        meta: dict[str, Any] = {}
        raw_meta = obj.get("meta")
        if raw_meta is not None:
            m = self.mapping(raw_meta, f"{where}/meta")
            if m is not None:
                self.fields(m, META_FIELDS, f"{where}/meta")
                for key in ("name", "description"):
                    value = self.text(m, key, f"{where}/meta")
                    if value is not None:
                        meta[key] = value
        alias = self.text(obj, "name", where)
        if alias is not None:
            if "name" not in meta:
                meta["name"] = alias
            self.notes.append(
                (
                    "WARN",
                    f"{where.lstrip('/')}.name is not a v1.0 field; read as {where.lstrip('/')}.meta.name",
                )
            )
        if meta:
            out["meta"] = meta
        for key in sorted(own):
            if key in obj:
                out[key] = obj[key]
        return out

    def amount(self, obj: dict[str, Any], key: str, where: str) -> int | None:
        value = obj.get(key)
        if value is None:
            return None
        if not is_int(value):
            self.fail(f"{where}/{key}", "must be an integer")
            return None
        if value < 1:
            self.fail(f"{where}/{key}", f"must be at least 1, got {value}")
            return None
        return int(value)


def names_of(items: list[dict[str, Any]]) -> dict[str, int]:
    return {str(it["meta"]["name"]): i for i, it in enumerate(items) if "name" in it.get("meta", {})}


def member(value: Any, names: Collection[str]) -> bool:
    """``value in names`` for a value from a client's document: anything but a string is simply not a
    member (a list or object would make ``in`` on a set or dict raise TypeError, i.e. a 500)."""
    return isinstance(value, str) and value in names
