"""API clients and their keys: create, authenticate, revoke.

A key is ``haul_`` plus 32 random bytes (URL-safe base64), shown once. The row
keeps its first characters (to find it) and a SHA-256 hash (to check it, in
constant time). SHA-256 suffices: the key is random, not a password.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING

from service.db import clients as client_rows
from service.db.models import Client
from service.errors import Unauthorized

if TYPE_CHECKING:
    from service.runtime import Runtime

KEY_PREFIX = "haul_"
_LOOKUP_LENGTH = len(KEY_PREFIX) + 10
ADMIN = "admin"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_client(
    rt: Runtime, name: str, *, admin: bool = False, tier: str = "standard"
) -> tuple[Client, str]:
    """Create a client; returns it and its key, which is never shown again."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    client = Client(
        name=name,
        key_prefix=key[:_LOOKUP_LENGTH],
        key_hash=_hash(key),
        scopes=[ADMIN] if admin else [],
        tier=tier,
    )
    with rt.db.session() as session:
        client_rows.insert(session, client)
    return client, key


def authenticate(rt: Runtime, authorization: str | None) -> Client:
    """The client behind an ``Authorization: Bearer`` header, or :class:`Unauthorized`.

    Missing, malformed, unknown and revoked keys get the same answer.
    """
    scheme, _, key = (authorization or "").partition(" ")
    key = key.strip()
    if (
        scheme.lower() != "bearer"
        or not key.startswith(KEY_PREFIX)
        or len(key) < _LOOKUP_LENGTH + 16
    ):
        raise Unauthorized()
    with rt.db.session() as session:
        client = client_rows.by_key_prefix(session, key[:_LOOKUP_LENGTH])
    expected = client.key_hash if client is not None else _hash("")
    matches = hmac.compare_digest(expected, _hash(key))
    if client is None or not matches or client.revoked_at is not None:
        raise Unauthorized()
    return client


def is_admin(client: Client) -> bool:
    return ADMIN in (client.scopes or [])
