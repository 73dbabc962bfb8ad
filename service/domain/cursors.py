"""Page cursors: an opaque token for "after this row" in a list ordered by creation time,
newest first. Jobs and subscriptions page the same way, so they share the token."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime


class CursorRejected(ValueError):
    """The token did not come from a ``next_cursor``."""

    def __init__(self) -> None:
        super().__init__("cursor is not valid; use next_cursor from a previous page")


def encode(created_at: datetime | None, ident: uuid.UUID) -> str:
    """The cursor that continues after the row created at ``created_at`` with id ``ident``."""
    assert created_at is not None  # a row read back from the database has its time
    raw = f"{created_at.isoformat()}|{ident}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The row a cursor points after; :class:`CursorRejected` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, _, ident = raw.partition("|")
        when = datetime.fromisoformat(created)
        if when.tzinfo is None:
            raise ValueError("naive timestamp")
        return when, uuid.UUID(ident)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise CursorRejected from exc
