"""Allocation request ids that carry their own content, signed by the server.

Why: storing each window's items in a row, so that a claim could name it by id, would cost a database
write per find-slot answer, and concurrent searches would queue on the writer lock (SQLite has one). An
id that *is* the window (compact JSON, zlib, base64url) plus an HMAC-SHA256 tag needs no row: any
replica that holds the key can check it, and nothing is written until someone claims. The tag is checked
before anything is decompressed or parsed, so a forged or altered id costs one HMAC and reads as unknown.

The key: ``SLOTBROKER_SECRET_KEY`` when set (several databases, or a key the operator rotates), else one
random key made once and kept in the database (``broker_secrets``), so every replica of one database agrees
without configuration. Changing the key turns the ids handed out before into unknown ones; they expire
within the TTL anyway.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from slotbroker.services.booking.allocation_request_bodies import ARBody
from slotbroker.store.db import Database
from slotbroker.store.unit_of_work import UnitOfWork

PREFIX = "ar1."
TAG_BYTES = 16  # 128-bit tags: forging one is out of reach; ids stay short
MAX_ID_CHARS = 200_000  # a window of thousands of instances; anything longer is not one of ours
MAX_BODY_BYTES = 4_000_000  # what a decompressed body of ours can reach
KEY_NAME = "allocation_request_key"


@dataclass(frozen=True)
class Sealed:
    project: str  # "" means a bearer id any project may claim
    expires_s: int
    body: ARBody


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class IdSealer:
    """Seals a window into an id, and opens ids it (or a replica with the same key) sealed."""

    def __init__(self, key: Callable[[], bytes]) -> None:
        self._key_source = key
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def _mac(self, payload: bytes) -> bytes:
        if self._key is None:
            with self._lock:
                if self._key is None:
                    self._key = self._key_source()
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:TAG_BYTES]

    def seal(self, project: str, expires_s: int, body: ARBody) -> str:
        doc = {"p": project, "x": expires_s, "b": body.to_dict()}
        payload = zlib.compress(json.dumps(doc, separators=(",", ":")).encode(), 6)
        return f"{PREFIX}{_b64(payload)}.{_b64(self._mac(payload))}"

    def open(self, ar_id: str) -> Sealed | None:
        """What ``ar_id`` holds, or None when it is not an id sealed with this key."""
        if len(ar_id) > MAX_ID_CHARS or not ar_id.startswith(PREFIX) or ar_id.count(".") != 2:
            return None
        data, tag = ar_id[len(PREFIX) :].split(".")
        try:
            payload, given = _unb64(data), _unb64(tag)
        except (binascii.Error, ValueError):
            return None
        if _b64(payload) != data or _b64(given) != tag:
            return None  # one spelling per id: the claim's consumer uuid derives from the id's text
        if not hmac.compare_digest(given, self._mac(payload)):
            return None
        inflate = zlib.decompressobj()
        raw = inflate.decompress(payload, MAX_BODY_BYTES)
        if inflate.unconsumed_tail:
            return None
        doc = json.loads(raw)
        return Sealed(str(doc["p"]), int(doc["x"]), ARBody.from_dict(doc["b"]))


def key_source(db: Database, configured: str | None) -> Callable[[], bytes]:
    """Where the sealer's key comes from: the configured secret, else the database's (made once)."""

    def load() -> bytes:
        if configured:
            return hashlib.sha256(configured.encode()).digest()
        with UnitOfWork(db) as uow:
            value = uow.secrets.get_or_add(KEY_NAME, secrets.token_hex(32))
            uow.commit()
        return bytes.fromhex(value)

    return load


__all__ = ["IdSealer", "Sealed", "key_source"]
