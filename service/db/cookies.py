"""A client's cookies per site family: one sealed (encrypted) file per row, never plain.

``sealed`` is the only column that holds anything of a cookie's value; ``count``
and ``earliest_expiry`` are there so the cookies can be listed without opening
them. ``revision`` grows with every write: a worker writes back what yt-dlp
rotated only over the revision it read, so a client's new upload (or a delete)
during the attempt is never overwritten by the older cookies.
"""

from __future__ import annotations

import uuid  # noqa: TC003  (a column type)
from dataclasses import dataclass
from datetime import datetime  # noqa: TC003  (a column type)
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Field, SQLModel

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlmodel import Session


class SiteCookies(SQLModel, table=True):
    """The cookies one client keeps for one site family, sealed under ``HAUL_SECRET_KEY``."""

    __tablename__ = "site_cookies"

    client_id: uuid.UUID = Field(
        sa_column_args=[sa.ForeignKey("clients.id", ondelete="CASCADE")], primary_key=True
    )
    site: str = Field(sa_type=sa.String(253), primary_key=True)
    #: A Fernet token of the Netscape file (service/domain/sealing.py).
    sealed: str = Field(sa_type=sa.Text)
    count: int = Field(sa_column_kwargs={"nullable": False})
    earliest_expiry: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    revision: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    updated_at: datetime | None = Field(
        default=None,
        sa_type=sa.DateTime(timezone=True),
        sa_column_kwargs={"server_default": sa.func.now(), "nullable": False},
    )


@dataclass(frozen=True)
class Listed:
    """What may be shown of a site's cookies: never the values."""

    site: str
    count: int
    earliest_expiry: datetime | None
    updated_at: datetime


@dataclass(frozen=True)
class Held:
    """A site's sealed cookies as a worker reads them, with the revision to write back over."""

    sealed: str
    revision: int


_T = SiteCookies


def put(
    session: Session,
    client_id: uuid.UUID,
    site: str,
    *,
    sealed: str,
    count: int,
    earliest_expiry: datetime | None,
) -> Listed:
    """Store (or replace) a client's cookies for a site."""
    values = {"sealed": sealed, "count": count, "earliest_expiry": earliest_expiry}
    row = session.execute(
        insert(_T)
        .values(client_id=client_id, site=site, **values)
        .on_conflict_do_update(
            index_elements=["client_id", "site"],
            set_={**values, "revision": _T.revision + 1, "updated_at": sa.func.now()},
        )
        .returning(_T.site, _T.count, _T.earliest_expiry, _T.updated_at)
    ).one()
    return Listed(*row)


def listed(session: Session, client_id: uuid.UUID) -> list[Listed]:
    rows = session.execute(
        select(_T.site, _T.count, _T.earliest_expiry, _T.updated_at)
        .where(_T.client_id == client_id)
        .order_by(_T.site)
    ).all()
    return [Listed(*r) for r in rows]


def remove(session: Session, client_id: uuid.UUID, site: str) -> bool:
    """Delete a client's cookies for a site; False when there were none."""
    gone = session.execute(
        delete(_T).where(_T.client_id == client_id, _T.site == site).returning(_T.site)
    ).first()
    return gone is not None


def held(session: Session, client_id: uuid.UUID, site: str) -> Held | None:
    row = session.execute(
        select(_T.sealed, _T.revision).where(_T.client_id == client_id, _T.site == site)
    ).first()
    return Held(*row) if row else None


def write_back(
    session: Session,
    client_id: uuid.UUID,
    site: str,
    *,
    revision: int,
    sealed: str,
    count: int,
    earliest_expiry: datetime | None,
) -> bool:
    """Replace the cookies a worker read with what the site rotated them to; False (nothing
    written) when the row was changed or deleted since ``revision`` was read."""
    done = session.execute(
        update(_T)
        .where(_T.client_id == client_id, _T.site == site, _T.revision == revision)
        .values(
            sealed=sealed,
            count=count,
            earliest_expiry=earliest_expiry,
            revision=_T.revision + 1,
            updated_at=sa.func.now(),
        )
        .returning(_T.site)
    ).first()
    return done is not None


def reseal_all(session: Session, reseal: Callable[[str], str]) -> int:
    """Seal every row again with ``reseal`` (a key rotation), row by row under a lock;
    returns how many rows were rewritten. The revision does not change: the cookies do not."""
    keys = session.execute(select(_T.client_id, _T.site).order_by(_T.client_id, _T.site)).all()
    done = 0
    for client_id, site in keys:
        token = session.execute(
            select(_T.sealed).where(_T.client_id == client_id, _T.site == site).with_for_update()
        ).scalar_one_or_none()
        if token is None:
            continue
        session.execute(
            update(_T)
            .where(_T.client_id == client_id, _T.site == site)
            .values(sealed=reseal(token))
        )
        done += 1
    return done
