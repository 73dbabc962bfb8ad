"""What every query on `jobs` shares: the database clock, ids bound as one array, and
the rows as an UPDATE … RETURNING left them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from service.db.models import Job

if TYPE_CHECKING:
    from sqlmodel import Session


#: The database's clock: the one clock the whole fleet shares.
NOW = sa.func.now


#: Ids bound as one array parameter, however many there are.
UUIDS = ARRAY(sa.Uuid)


def returning_all(session: Session, stmt: Any) -> list[Job]:
    """The rows as the UPDATE left them, also when the session had read them before."""
    options = {"synchronize_session": False, "populate_existing": True}
    return list(session.execute(stmt.returning(Job).execution_options(**options)).scalars())


def returning_one(session: Session, stmt: Any) -> Job | None:
    found = returning_all(session, stmt)
    return found[0] if found else None
