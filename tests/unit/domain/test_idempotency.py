"""Idempotency-Key (service/domain/idempotency.py): which keys are valid, and a request's
fingerprint.
"""

from __future__ import annotations

import pytest

from service.domain.idempotency import MAX_KEY_LENGTH, KeyRejected, fingerprint, parse_key

# --- Idempotency-Key ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("8e03978e-40d5-43e8-bc93-6894a57f9324", "8e03978e-40d5-43e8-bc93-6894a57f9324"),
        ('"8e03978e-40d5"', "8e03978e-40d5"),
        ("  order-17  ", "order-17"),
        ("a", "a"),
        ("x" * MAX_KEY_LENGTH, "x" * MAX_KEY_LENGTH),
    ],
)
def test_valid_keys(raw: str, key: str) -> None:
    assert parse_key(raw) == key


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ('""', "empty"),
        ("x" * (MAX_KEY_LENGTH + 1), "longer than 255"),
        ("two words", "without spaces"),
        ("tab\there", "without spaces"),
        ("clé", "visible ASCII"),
        ("nul\x00", "visible ASCII"),
    ],
)
def test_invalid_keys_say_why(raw: str, reason: str) -> None:
    with pytest.raises(KeyRejected, match=reason):
        parse_key(raw)


def test_the_same_request_in_another_order_has_the_same_fingerprint() -> None:
    first = {"url": "https://x.example/a", "options": {"height": 720, "audio_only": False}}
    second = {"options": {"audio_only": False, "height": 720}, "url": "https://x.example/a"}

    assert fingerprint(first) == fingerprint(second)
    assert fingerprint(first) != fingerprint({**first, "url": "https://x.example/b"})
