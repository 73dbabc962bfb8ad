"""API clients and their keys: create, authenticate, revoke; webhook signing secrets.

A key is ``haul_`` plus 32 random bytes (URL-safe base64), shown once. The row
keeps its first characters (to find it) and a SHA-256 hash (to check it, in
constant time). SHA-256 suffices: the key is random, not a password.

A client's webhook secret (``whsec_…``) is shown once too, but kept as it is:
signing needs the secret itself, not a hash of it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING

from service.db import clients as client_rows
from service.db.models import Client
from service.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from service.webhooks.signing import new_secret

if TYPE_CHECKING:
    import uuid

    from service.domain.quotas import ClientLimits
    from service.runtime import Runtime
    from service.settings import Settings

KEY_PREFIX = "haul_"
_LOOKUP_LENGTH = len(KEY_PREFIX) + 10
ADMIN = "admin"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_client(
    rt: Runtime, name: str, *, admin: bool = False, tier: str = "standard"
) -> tuple[Client, str]:
    """Create a client; returns it and its key, which is never shown again."""
    client, key = _new_client(name, admin=admin, tier=tier)
    with rt.db.session() as session:
        client_rows.insert(session, client)
    return client, key


def create_first_admin(rt: Runtime, name: str = ADMIN) -> tuple[Client, str] | None:
    """An admin client and its key when the database has no client at all, else None.

    What a fresh deployment's first start prints once, so a person can use the API
    without reading how keys are made; once any client exists it does nothing.
    """
    client, key = _new_client(name, admin=True, tier="standard")
    with rt.db.session() as session:
        created = client_rows.insert_first(session, client)
    return (client, key) if created else None


def _new_client(name: str, *, admin: bool, tier: str) -> tuple[Client, str]:
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    client = Client(
        name=name,
        key_prefix=key[:_LOOKUP_LENGTH],
        key_hash=_hash(key),
        scopes=[ADMIN] if admin else [],
        tier=tier,
        webhook_secret=new_secret(),
    )
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
    client = client_rows.by_key_prefix(rt.db.direct, key[:_LOOKUP_LENGTH])
    expected = client.key_hash if client is not None else _hash("")
    matches = hmac.compare_digest(expected, _hash(key))
    if client is None or not matches or client.revoked_at is not None:
        raise Unauthorized()
    return client


def is_admin(client: Client) -> bool:
    return ADMIN in (client.scopes or [])


def all_clients(rt: Runtime, by: Client) -> list[Client]:
    """Every client, oldest first, for an admin."""
    _require_admin(by)
    with rt.db.session() as session:
        return client_rows.list_all(session)


def revoke(rt: Runtime, by: Client, client_id: uuid.UUID) -> None:
    """End a client's key (and so its dashboard sessions) for good; an admin's act."""
    _require_admin(by)
    with rt.db.session() as session:
        if not client_rows.revoke(session, client_id):
            raise NotFound("no such active client")


def _require_admin(client: Client) -> None:
    if not is_admin(client):
        raise Forbidden("managing clients needs an admin key")


def limits_of(settings: Settings, client: Client) -> ClientLimits:
    """The limits that hold for this client: its own where set, else ``HAUL_CLIENT_*``."""
    return client_rows.own_limits(client).over(settings.client_limits)


def set_limits(rt: Runtime, name_or_id: str, **limits: int | None) -> Client:
    """Give one client its own limits; a None value returns that one to the default."""
    client_id = find_one(rt, name_or_id).id
    with rt.db.session() as session:
        client = client_rows.set_limits(session, client_id, **limits)
    if client is None:
        raise NotFound(f"no client with id {client_id}")
    return client


def find_one(rt: Runtime, name_or_id: str) -> Client:
    """The one client with this id or name; a name shared by several must be given as an id."""
    with rt.db.session() as session:
        found = client_rows.by_name_or_id(session, name_or_id)
    if not found:
        raise NotFound(f"no client named or with id {name_or_id!r}")
    if len(found) > 1:
        ids = ", ".join(str(c.id) for c in found)
        raise InvalidInput(f"{len(found)} clients are named {name_or_id!r}; give an id: {ids}")
    return found[0]


def rotate_secret(rt: Runtime, name_or_id: str, *, grace: bool = True) -> tuple[Client, str]:
    """Give a client a new webhook secret; returns it (shown once).

    With ``grace``, deliveries are signed with the old secret as well for
    ``HAUL_WEBHOOK_SECRET_GRACE_S``, so a receiver can switch without missing one;
    without it (a leaked secret), the old one stops signing at once.
    """
    secret = new_secret()
    client_id = find_one(rt, name_or_id).id
    with rt.db.session() as session:
        client = client_rows.rotate_secret(session, client_id, secret, keep_previous=grace)
    assert client is not None
    return client, secret
