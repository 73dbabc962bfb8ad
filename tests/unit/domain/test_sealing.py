"""Sealing (service/domain/sealing.py): Fernet under keys derived from HAUL_SECRET_KEY."""

from __future__ import annotations

import pytest

from service.domain.sealing import COOKIES, Sealer, Unsealable

OLD = "an-old-secret-key-of-at-least-32-characters"
NEW = "a-new-secret-key-of-at-least-32-characters!"


def test_what_is_sealed_opens_and_is_not_readable() -> None:
    sealer = Sealer([NEW])

    token = sealer.seal("SID=value-123")

    assert "value-123" not in token
    assert sealer.open(token) == "SID=value-123"
    assert Sealer([NEW]).open(token) == "SID=value-123"  # another process, same key


def test_another_key_or_an_altered_token_does_not_open() -> None:
    token = Sealer([OLD]).seal("x")

    with pytest.raises(Unsealable):
        Sealer([NEW]).open(token)
    with pytest.raises(Unsealable):
        Sealer([OLD]).open(token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB"))


def test_another_purpose_is_another_key() -> None:
    token = Sealer([NEW]).seal("x")

    with pytest.raises(Unsealable):
        Sealer([NEW], purpose=COOKIES + b" other").open(token)


def test_a_rotation_opens_the_old_and_reseals_under_the_new() -> None:
    # Given a token sealed before the rotation
    old_token = Sealer([OLD]).seal("x")
    # When the new key comes first and the old one is kept
    rotating = Sealer([NEW, OLD])
    # Then the old token still opens, and resealed it opens with the new key alone
    assert rotating.open(old_token) == "x"
    assert Sealer([NEW]).open(rotating.reseal(old_token)) == "x"
    assert Sealer([NEW]).open(rotating.seal("y")) == "y"


def test_a_sealer_needs_a_key() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Sealer([])
