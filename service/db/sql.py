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


#: Every column of ``jobs``, for statements that return whole rows as plain rows.
JOB_COLUMNS = tuple(Job.__table__.c)

#: Column name -> attribute name (``metadata`` is ``Job.user_metadata``).
_ATTRIBUTES = {
    column.name: attr.key for attr in sa.inspect(Job).column_attrs for column in attr.columns
}


def job_of(row: Any) -> Job:
    """A plain row of :data:`JOB_COLUMNS` as a detached ``Job`` (no session, no identity
    map: the hot paths skip the ORM's loading machinery)."""
    mapping = row._mapping
    return Job(**{_ATTRIBUTES[name]: mapping[name] for name in _ATTRIBUTES if name in mapping})


def returning_all(session: Session, stmt: Any) -> list[Job]:
    """The rows as the UPDATE left them, also when the session had read them before."""
    options = {"synchronize_session": False, "populate_existing": True}
    return list(session.execute(stmt.returning(Job).execution_options(**options)).scalars())


def returning_one(session: Session, stmt: Any) -> Job | None:
    found = returning_all(session, stmt)
    return found[0] if found else None
