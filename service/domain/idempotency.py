"""Idempotency keys: what a valid key looks like, and when two requests are the same one."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

MAX_KEY_LENGTH = 255


class KeyRejected(ValueError):
    """The Idempotency-Key header is not acceptable; the message says why, for a person."""


def parse_key(raw: str) -> str:
    """The key in an ``Idempotency-Key`` header, or :class:`KeyRejected`.

    Visible ASCII only, 1 to 255 characters. The IETF draft writes the key as a
    structured-field string (``"…"``); its quotes are removed, so both spellings name
    the same key.
    """
    key = raw.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not key:
        raise KeyRejected("Idempotency-Key is empty")
    if len(key) > MAX_KEY_LENGTH:
        raise KeyRejected(f"Idempotency-Key is longer than {MAX_KEY_LENGTH} characters")
    if not all("!" <= ch <= "~" for ch in key):
        raise KeyRejected("Idempotency-Key must be visible ASCII characters, without spaces")
    return key


def fingerprint(request: Mapping[str, Any]) -> str:
    """A stable hash of a request's meaning: key order and spacing do not change it."""
    text = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()
