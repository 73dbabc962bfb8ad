"""Queries on ``clients``."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from service.db.direct import compiled
from service.db.models import Client
from service.db.sql import detached
from service.domain.quotas import ClientLimits

if TYPE_CHECKING:
    from sqlmodel import Session

    from service.db.direct import Direct


def insert(session: Session, client: Client) -> Client:
    session.add(client)
    session.flush()
    return client


def insert_first(session: Session, client: Client) -> bool:
    """Insert ``client`` only into an empty table; True when it did.

    The lock (held to the end of the transaction) makes two first starts at once
    create one client, not two; it is taken only while the table looks empty, so a
    deployment in use never waits for it.
    """
    any_client = sa.select(Client.id).limit(1)
    if session.execute(any_client).first() is not None:
        return False
    session.execute(sa.text("LOCK TABLE clients IN SHARE ROW EXCLUSIVE MODE"))
    if session.execute(any_client).first() is not None:
        return False
    insert(session, client)
    return True


_CLIENTS = Client.__table__
_BY_KEY_PREFIX = sa.select(*_CLIENTS.c).where(_CLIENTS.c.key_prefix == sa.bindparam("prefix"))


def by_key_prefix(direct: Direct, prefix: str) -> Client | None:
    """The client owning a key prefix, revoked or not (the caller decides): one prepared
    read on the unique index, in autocommit, a plain row (every authenticated request
    asks it, so it goes the direct way: ``db/direct.py``)."""
    row = direct.one(compiled(_BY_KEY_PREFIX), {"prefix": prefix})
    return None if row is None else detached(Client, row)


def revoke(session: Session, client_id: uuid.UUID) -> bool:
    stmt = (
        sa.update(Client)
        .where(Client.id == client_id, Client.revoked_at.is_(None))
        .values(revoked_at=sa.func.now())
    )
    return session.execute(stmt).rowcount == 1


def list_all(session: Session) -> list[Client]:
    return list(session.execute(sa.select(Client).order_by(Client.created_at)).scalars())


def with_default_endpoint(session: Session, scope: str) -> list[Client]:
    """Unrevoked clients holding ``scope`` whose default webhook endpoint is set and enabled
    (who hears of a site's breaker: the admins)."""
    stmt = (
        sa.select(Client)
        .where(
            Client.revoked_at.is_(None),
            Client.default_callback_url.is_not(None),
            Client.default_callback_disabled_at.is_(None),
            sa.cast(Client.scopes, postgresql.JSONB).contains([scope]),
        )
        .order_by(Client.created_at, Client.id)
    )
    return list(session.execute(stmt).scalars())


def get(session: Session, client_id: uuid.UUID) -> Client | None:
    return session.get(Client, client_id, populate_existing=True)


def by_name_or_id(session: Session, name_or_id: str) -> list[Client]:
    """Clients matching an id, or else a name (names need not be unique)."""
    try:
        ident = uuid.UUID(name_or_id)
    except ValueError:
        stmt = sa.select(Client).where(Client.name == name_or_id).order_by(Client.created_at)
    else:
        stmt = sa.select(Client).where(Client.id == ident)
    return list(session.execute(stmt).scalars())


def rotate_secret(
    session: Session, client_id: uuid.UUID, secret: str, *, keep_previous: bool
) -> Client | None:
    """Put in a new signing secret; the old one keeps signing during the grace period."""
    stmt = (
        sa.update(Client)
        .where(Client.id == client_id)
        .values(
            previous_webhook_secret=Client.webhook_secret if keep_previous else None,
            webhook_secret=secret,
            webhook_secret_rotated_at=sa.func.now(),
        )
        .returning(Client)
        .execution_options(synchronize_session=False)
    )
    return session.execute(stmt).scalars().first()


def set_default_callback(session: Session, client_id: uuid.UUID, url: str | None) -> Client | None:
    """Set (or clear) the default endpoint; setting it again re-enables a disabled one."""
    stmt = (
        sa.update(Client)
        .where(Client.id == client_id)
        .values(default_callback_url=url, default_callback_disabled_at=None)
        .returning(Client)
        .execution_options(synchronize_session=False)
    )
    return session.execute(stmt).scalars().first()


def disable_default_callback(session: Session, client_id: uuid.UUID, url: str) -> bool:
    """The endpoint answered 410 Gone: stop using it, unless it was changed meanwhile."""
    stmt = (
        sa.update(Client)
        .where(
            Client.id == client_id,
            Client.default_callback_url == url,
            Client.default_callback_disabled_at.is_(None),
        )
        .values(default_callback_disabled_at=sa.func.now())
    )
    return session.execute(stmt).rowcount == 1


def lock(session: Session, client_id: uuid.UUID) -> None:
    """Hold the client's row until the transaction ends, so that counting its jobs and
    inserting one cannot interleave with another API process doing the same.

    ``FOR NO KEY UPDATE`` leaves ``FOR KEY SHARE`` free: inserting rows that reference
    the client (a worker's playlist entries) does not wait for it.
    """
    session.execute(
        sa.select(Client.id).where(Client.id == client_id).with_for_update(key_share=True)
    )


def set_limits(session: Session, client_id: uuid.UUID, **limits: int | None) -> Client | None:
    """Set the named limit columns (None returns one to the deployment's default)."""
    stmt = (
        sa.update(Client)
        .where(Client.id == client_id)
        .values(**limits)
        .returning(Client)
        .execution_options(synchronize_session=False)
    )
    return session.execute(stmt).scalars().first()


def own_limits(client: Client) -> ClientLimits:
    """The limits an operator set on this client alone (None: the default applies)."""
    return ClientLimits(
        max_active_jobs=client.max_active_jobs,
        storage_quota_bytes=client.storage_quota_bytes,
        requests_per_minute=client.requests_per_minute,
        max_subscriptions=client.max_subscriptions,
        max_running=client.max_running,
    )
