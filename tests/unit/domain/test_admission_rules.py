"""Admission's pure rules: what an Idempotency-Key may be, when two requests are the same,
and what a rate-limit timestamp means to the client (``Retry-After``, remaining, reset)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from service.domain.idempotency import MAX_KEY_LENGTH, KeyRejected, fingerprint, parse_key
from service.domain.ratelimit import RateState, interval, period, state

# --- Idempotency-Key ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("abc", "abc"),
        ("  abc\t", "abc"),
        ('"abc"', "abc"),
        ('"a"', "a"),
        ('"abc', '"abc'),
        ('abc"', 'abc"'),
        ('"', '"'),
        ("!~", "!~"),
        ("k" * MAX_KEY_LENGTH, "k" * MAX_KEY_LENGTH),
        ('"' + "k" * MAX_KEY_LENGTH + '"', "k" * MAX_KEY_LENGTH),
    ],
)
def test_a_key_is_read_as_the_client_meant_it(raw: str, key: str) -> None:
    # Given a header value, bare or as a structured-field string
    # When it is read
    # Then the same key comes out either way
    assert parse_key(raw) == key


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("", "Idempotency-Key is empty"),
        ("   ", "Idempotency-Key is empty"),
        ('""', "Idempotency-Key is empty"),
        ("k" * (MAX_KEY_LENGTH + 1), "Idempotency-Key is longer than 255 characters"),
        ("a b", "Idempotency-Key must be visible ASCII characters, without spaces"),
        ("a\x7fb", "Idempotency-Key must be visible ASCII characters, without spaces"),
        ("a\x1fb", "Idempotency-Key must be visible ASCII characters, without spaces"),
        ("clé", "Idempotency-Key must be visible ASCII characters, without spaces"),
    ],
)
def test_a_bad_key_is_refused_saying_why(raw: str, why: str) -> None:
    # Given a header value that is not a usable key
    # When it is read
    # Then it is refused with a reason a person can act on
    with pytest.raises(KeyRejected) as refused:
        parse_key(raw)
    assert str(refused.value) == why


def test_a_request_fingerprint_ignores_key_order_and_spacing() -> None:
    # Given the same request written two ways, and a different one
    one = {"url": "https://example.com/v", "options": {"audio": True, "preset": "best"}}
    same = {"options": {"preset": "best", "audio": True}, "url": "https://example.com/v"}
    other = {**one, "url": "https://example.com/w"}
    # Then the first two have one fingerprint and the third another
    assert fingerprint(one) == fingerprint(same)
    assert fingerprint(one) != fingerprint(other)


def test_a_request_fingerprint_is_the_sha256_of_its_canonical_json() -> None:
    # Given a request with non-ASCII text (stored fingerprints must not change between releases)
    request = {"b": "é", "a": [1, 2]}
    # Then its fingerprint is the hash of sorted, compact, ASCII-escaped JSON
    canonical = '{"a":[1,2],"b":"\\u00e9"}'
    assert fingerprint(request) == hashlib.sha256(canonical.encode()).hexdigest()


# --- rate limits (GCRA) -------------------------------------------------------------------------

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def test_one_request_moves_the_arrival_time_by_a_share_of_the_period() -> None:
    assert period() == timedelta(seconds=60)
    assert interval(60) == timedelta(seconds=1)
    assert interval(6) == timedelta(seconds=10)
    assert interval(120) == timedelta(seconds=0.5)


@pytest.mark.parametrize(
    ("limit", "tat", "remaining", "reset_s"),
    [
        pytest.param(60, at(0), 60, 0, id="idle: the whole minute"),
        pytest.param(60, at(-30), 60, 0, id="long idle: still no more than the limit"),
        pytest.param(60, at(1), 59, 1, id="one request spent"),
        pytest.param(60, at(0.5), 59, 1, id="part of one spent: reset rounds up"),
        pytest.param(6, at(25), 3, 25, id="six a minute, 25 s ahead"),
        pytest.param(7, at(0), 7, 0, id="a share that does not divide the minute"),
        pytest.param(7, at(60 / 7), 6, 9, id="one of seven spent"),
        pytest.param(6, at(60), 0, 60, id="all spent"),
    ],
)
def test_an_allowed_request_says_what_is_left_and_when_it_is_all_back(
    limit: int, tat: datetime, remaining: int, reset_s: int
) -> None:
    # Given the arrival time after an allowed request
    # When the client is told where it stands
    told = state(limit, tat, NOW, allowed=True)
    # Then it learns how many requests remain and when its whole quota is back
    assert told == RateState(limit=limit, remaining=remaining, reset_s=reset_s)
    assert told.allowed


@pytest.mark.parametrize(
    ("limit", "tat", "retry_after_s", "reset_s"),
    [
        pytest.param(6, at(60), 10, 60, id="a full bucket: one share to wait"),
        pytest.param(6, at(55), 5, 55, id="part of a share to wait"),
        pytest.param(60, at(59), 1, 59, id="never less than a second"),
        pytest.param(60, at(59.5), 1, 60, id="half a second: one"),
        pytest.param(60, at(60.2), 2, 61, id="rounded up"),
        pytest.param(6, at(70), 20, 70, id="past the period: the rest and a share"),
    ],
)
def test_a_refused_request_says_when_to_come_back(
    limit: int, tat: datetime, retry_after_s: int, reset_s: int
) -> None:
    # Given the arrival time when a request is refused
    # When the client is told
    told = state(limit, tat, NOW, allowed=False)
    # Then nothing remains, and Retry-After is when the next request would pass
    assert told == RateState(limit=limit, remaining=0, reset_s=reset_s, retry_after_s=retry_after_s)
    assert not told.allowed
