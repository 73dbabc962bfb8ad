"""Queries on ``idempotency_keys``: which job a client's key names, until it expires."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from service.db.models import IdempotencyKey

if TYPE_CHECKING:
    import uuid
    from datetime import timedelta

    from sqlmodel import Session

_NOW = sa.func.now


def claim(
    session: Session,
    client_id: uuid.UUID,
    key: str,
    *,
    request_hash: str,
    job_id: uuid.UUID,
    ttl: timedelta,
) -> bool:
    """Make ``key`` name ``job_id`` unless a live row holds it already; True if it does now.

    A claim of a key that another transaction has just claimed waits, on the primary
    key, until that one commits or rolls back: of any number at once, exactly one
    wins. An expired row is taken over. When this returns False, the holder's row is
    locked until the caller's transaction ends, so it can be read before it changes.
    """
    stmt = pg_insert(IdempotencyKey).values(
        client_id=client_id,
        key=key,
        request_hash=request_hash,
        job_id=job_id,
        created_at=_NOW(),
        expires_at=_NOW() + ttl,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["client_id", "key"],
        set_={
            "request_hash": stmt.excluded.request_hash,
            "job_id": stmt.excluded.job_id,
            "created_at": stmt.excluded.created_at,
            "expires_at": stmt.excluded.expires_at,
        },
        where=IdempotencyKey.expires_at <= _NOW(),
    )
    return session.execute(stmt.returning(IdempotencyKey.job_id)).first() is not None


def holder(session: Session, client_id: uuid.UUID, key: str) -> IdempotencyKey | None:
    stmt = sa.select(IdempotencyKey).where(
        IdempotencyKey.client_id == client_id, IdempotencyKey.key == key
    )
    return session.execute(stmt.execution_options(populate_existing=True)).scalars().first()


def prune_expired(session: Session, limit: int) -> int:
    """Delete up to ``limit`` expired keys; returns how many."""
    expired = (
        sa.select(IdempotencyKey.client_id, IdempotencyKey.key)
        .where(IdempotencyKey.expires_at < _NOW())
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    stmt = sa.delete(IdempotencyKey).where(
        sa.tuple_(IdempotencyKey.client_id, IdempotencyKey.key).in_(expired)
    )
    return session.execute(stmt).rowcount
