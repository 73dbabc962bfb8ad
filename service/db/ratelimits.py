"""Queries on ``client_rates``: a client's request rate, moved in one statement."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from service.db.models import ClientRate

if TYPE_CHECKING:
    import uuid
    from datetime import datetime, timedelta

    from sqlmodel import Session

_NOW = sa.func.now


def take(
    session: Session, client_id: uuid.UUID, step: timedelta, period: timedelta
) -> tuple[bool, datetime, datetime]:
    """Spend one request if the client has one left: (allowed, tat, now) by the database's clock.

    One ``INSERT … ON CONFLICT DO UPDATE … WHERE``: the row lock orders concurrent requests
    from every API process, and a refused request changes nothing.
    """
    ahead = sa.func.greatest(ClientRate.tat, _NOW()) + step
    stmt = (
        pg_insert(ClientRate)
        .values(client_id=client_id, tat=_NOW() + step)
        .on_conflict_do_update(
            index_elements=["client_id"],
            set_={"tat": ahead},
            where=ahead <= _NOW() + period,
        )
        .returning(ClientRate.tat, _NOW())
    )
    taken = session.execute(stmt).first()
    if taken is not None:
        return True, taken[0], taken[1]
    tat, now = session.execute(
        sa.select(ClientRate.tat, _NOW()).where(ClientRate.client_id == client_id)
    ).one()
    return False, tat, now
