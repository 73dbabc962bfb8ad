"""``LISTEN haul_jobs``: the changes the ``jobs_changed`` trigger announces (and the
subscription events :func:`notify` sends), as dicts.

PostgreSQL's LISTEN/NOTIFY, behind one function: the API's live hub never sees a
connection, only the changes.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import psycopg
import sqlalchemy as sa
import structlog
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from sqlmodel import Session

log = structlog.get_logger(__name__)

CHANNEL = "haul_jobs"


def _conninfo(database_url: str) -> str:
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


async def job_changes(
    database_url: str, *, on_connect: Callable[[], Awaitable[None]] | None = None
) -> AsyncIterator[dict[str, Any]]:
    """Every job change, forever; reconnects (with backoff) when the database goes away.

    ``on_connect`` is awaited after each (re)connection, once LISTEN is in place, so
    the caller can catch up on what it may have missed while disconnected.
    """
    pause = 0.5
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(
                _conninfo(database_url), autocommit=True
            ) as conn:
                await conn.execute(f"LISTEN {CHANNEL}")
                pause = 0.5
                if on_connect is not None:
                    await on_connect()
                async for note in conn.notifies():
                    try:
                        yield json.loads(note.payload)
                    except ValueError:
                        log.warning("unreadable notification", payload=note.payload[:200])
        except psycopg.OperationalError as exc:
            log.warning("job change listener disconnected", error=str(exc), retry_in_s=pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 10.0)


def notify(session: Session, change: dict[str, Any]) -> None:
    """Announce a change that is not a job's row (a subscription's check) on the same
    channel, when the caller's transaction commits. Keep it small: PostgreSQL refuses a
    payload over 8000 bytes."""
    payload = json.dumps(change, separators=(",", ":"), default=str)
    session.execute(sa.select(sa.func.pg_notify(CHANNEL, payload)))
