"""A key rotation of sealed cookies (service/intake/cookies.py: rotate, ``haul cookies
rotate``), against a real database."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from pydantic import SecretStr

from service.db import cookies as cookie_rows
from service.domain.sealing import Sealer, Unsealable
from service.intake import cookies
from service.runtime import Runtime
from tests.support.cookies import line, netscape

if TYPE_CHECKING:
    from service.db.models import Client
    from service.settings import Settings

pytestmark = pytest.mark.integration

OLD = "the-old-secret-key-0123456789-0123456789"
NEW = "the-new-secret-key-0123456789-0123456789"


def with_keys(runtime: Runtime, current: str | None, old: str | None = None) -> Runtime:
    keys = {
        "secret_key": SecretStr(current) if current else None,
        "old_secret_keys": SecretStr(old) if old else None,
    }
    return Runtime(runtime.settings.model_copy(update=keys), runtime.db, runtime.broker)


def sealed(runtime: Runtime, client: Client, site: str) -> str:
    with runtime.db.session() as session:
        held = cookie_rows.held(session, client.id, site)
    assert held is not None
    return held.sealed


def test_a_rotation_reseals_every_sites_cookies_under_the_new_key(
    runtime: Runtime, client: Client, settings: Settings
) -> None:
    # Given cookies of two sites sealed under the old key
    before = with_keys(runtime, OLD)
    cookies.put(before, client, "youtube.com", netscape(line(".youtube.com", "SID", "one")))
    cookies.put(before, client, "vimeo.com", netscape(line(".vimeo.com", "vuid", "two")))

    # When the key is rotated (new key first, the old one kept) and the rotation runs
    during = with_keys(runtime, NEW, f"{OLD}, ")
    assert cookies.rotate(during) == 2

    # Then the new key alone opens them, and the old one no longer does
    assert "one" in Sealer([NEW]).open(sealed(runtime, client, "youtube.com"))
    assert "two" in Sealer([NEW]).open(sealed(runtime, client, "vimeo.com"))
    with pytest.raises(Unsealable):
        Sealer([OLD]).open(sealed(runtime, client, "vimeo.com"))
    # And what a client sees did not change
    assert [(v.site, v.count) for v in cookies.listed(during, client)] == [
        ("vimeo.com", 1),
        ("youtube.com", 1),
    ]


def test_a_rotation_without_the_old_key_changes_nothing(runtime: Runtime, client: Client) -> None:
    # Given cookies sealed under the old key
    cookies.put(
        with_keys(runtime, OLD), client, "youtube.com", netscape(line(".youtube.com", "a", "b"))
    )
    token = sealed(runtime, client, "youtube.com")
    # When the rotation runs with the new key but the old one forgotten, then it refuses
    with pytest.raises(Unsealable):
        cookies.rotate(with_keys(runtime, NEW))
    # And the row is as it was (the transaction rolled back)
    assert sealed(runtime, client, "youtube.com") == token
