"""Encryption at rest for what haul keeps on a client's behalf (cookies), with key rotation.

Fernet (AES-128-CBC with HMAC-SHA256, from the ``cryptography`` package) under
keys derived from ``HAUL_SECRET_KEY`` by HKDF-SHA256 with a purpose label, so the
cookie key is never the dashboard's signing key itself. A :class:`Sealer` holds
the current secret first and retired ones after (``MultiFernet``): it seals with
the first and opens with any, so a rotation never locks out what was sealed
before it; :meth:`Sealer.reseal` moves one token to the current key.

A token is authenticated: a token sealed under another key, or altered, does not
open (:class:`Unsealable`); it is never half-read.

``cryptography`` is imported when a sealer is first built, not with this module: its
OpenSSL bindings are about 6 MiB of every API process, most of which never seal.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from cryptography.fernet import Fernet

#: The HKDF label of cookie keys; another purpose gets another label, hence another key.
COOKIES = b"haul cookies v1"


class Unsealable(Exception):
    """The token was sealed under a key this process does not have, or was altered."""


def derive(secret: str, purpose: bytes) -> Fernet:
    """The Fernet key of ``purpose`` under ``secret`` (the same on every process)."""
    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        secret.encode()
    )
    return Fernet(base64.urlsafe_b64encode(raw))


class Sealer:
    """Seals with the first secret, opens with any of them."""

    def __init__(self, secrets: Sequence[str], purpose: bytes = COOKIES) -> None:
        if not secrets:
            raise ValueError("a sealer needs at least one secret")
        from cryptography.fernet import InvalidToken, MultiFernet

        self._invalid = InvalidToken
        self._keys = MultiFernet([derive(s, purpose) for s in secrets])

    def seal(self, plain: str) -> str:
        return self._keys.encrypt(plain.encode()).decode()

    def open(self, token: str) -> str:
        try:
            return self._keys.decrypt(token.encode()).decode()
        except self._invalid as exc:
            raise Unsealable() from exc

    def reseal(self, token: str) -> str:
        """The same plaintext sealed under the current secret (for a rotation)."""
        try:
            return self._keys.rotate(token.encode()).decode()
        except self._invalid as exc:
            raise Unsealable() from exc
