"""Queries on ``job_events``: the state changes a reconnecting client replays."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from service.db.models import JobEvent

if TYPE_CHECKING:
    import uuid

    from sqlmodel import Session


def since(
    session: Session,
    client_id: uuid.UUID,
    after_id: int,
    *,
    job_id: uuid.UUID | None = None,
    limit: int = 1000,
) -> list[JobEvent]:
    """The client's (or one job's) state changes after ``after_id``, oldest first."""
    stmt = sa.select(JobEvent).where(JobEvent.client_id == client_id, JobEvent.id > after_id)
    if job_id is not None:
        stmt = stmt.where(JobEvent.job_id == job_id)
    return list(session.execute(stmt.order_by(JobEvent.id).limit(limit)).scalars())


def last_id(session: Session, client_id: uuid.UUID, *, job_id: uuid.UUID | None = None) -> int:
    """The newest event id of the client (or one job); 0 when there is none."""
    stmt = sa.select(sa.func.coalesce(sa.func.max(JobEvent.id), 0)).where(
        JobEvent.client_id == client_id
    )
    if job_id is not None:
        stmt = stmt.where(JobEvent.job_id == job_id)
    return int(session.execute(stmt).scalar_one())
