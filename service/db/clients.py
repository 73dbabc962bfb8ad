"""Queries on ``clients``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from service.db.models import Client

if TYPE_CHECKING:
    import uuid

    from sqlmodel import Session


def insert(session: Session, client: Client) -> Client:
    session.add(client)
    session.flush()
    return client


def by_key_prefix(session: Session, prefix: str) -> Client | None:
    """The client owning a key prefix, revoked or not (the caller decides)."""
    return session.execute(sa.select(Client).where(Client.key_prefix == prefix)).scalars().first()


def revoke(session: Session, client_id: uuid.UUID) -> bool:
    stmt = (
        sa.update(Client)
        .where(Client.id == client_id, Client.revoked_at.is_(None))
        .values(revoked_at=sa.func.now())
    )
    return session.execute(stmt).rowcount == 1


def list_all(session: Session) -> list[Client]:
    return list(session.execute(sa.select(Client).order_by(Client.created_at)).scalars())
