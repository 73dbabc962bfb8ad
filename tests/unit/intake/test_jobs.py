"""The keyset cursor of ``GET /v1/jobs``: opaque to users, exact for the database."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from service.db.models import Job
from service.errors import BadRequest
from service.intake.jobs import decode_cursor, encode_cursor


def make_job(created_at: datetime) -> Job:
    return Job(
        id=uuid.uuid4(), client_id=uuid.uuid4(), url="https://example.com/", created_at=created_at
    )


def cursor_of(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "created_at",
    [
        datetime(2025, 3, 4, 5, 6, 7, 891011, tzinfo=UTC),
        datetime(2025, 3, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=-3))),
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    ],
    ids=["utc-microseconds", "negative-offset", "half-hour-offset"],
)
def test_cursor_round_trips_the_last_job(created_at: datetime) -> None:
    # Given the last job of a page
    job = make_job(created_at)

    # When its cursor is decoded again
    when, ident = decode_cursor(encode_cursor(job))

    # Then it gives back exactly the keyset position: timestamp to the microsecond, and id
    assert when == created_at
    assert when.utcoffset() == created_at.utcoffset()
    assert ident == job.id


def test_cursor_is_url_safe() -> None:
    cursor = encode_cursor(make_job(datetime.now(UTC)))

    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!!!",
        "not a cursor",
        "a",
        "é",
        cursor_of("2025-01-01T00:00:00+00:00"),
        cursor_of("2025-01-01T00:00:00+00:00|not-a-uuid"),
        cursor_of(f"yesterday|{uuid.uuid4()}"),
        base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(),
    ],
    ids=[
        "empty",
        "punctuation",
        "spaces",
        "one-char",
        "non-ascii",
        "no-id",
        "bad-id",
        "bad-time",
        "not-utf8",
    ],
)
def test_garbage_is_a_bad_request(cursor: str) -> None:
    with pytest.raises(BadRequest, match="cursor is not valid"):
        decode_cursor(cursor)


def test_naive_timestamp_is_a_bad_request() -> None:
    # A timestamp without an offset cannot be compared with timestamptz safely
    cursor = cursor_of(f"2025-01-01T00:00:00|{uuid.uuid4()}")

    with pytest.raises(BadRequest):
        decode_cursor(cursor)
