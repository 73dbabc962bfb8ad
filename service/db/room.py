"""A client's room under ``max_active_jobs`` for work no request asked for one by one: the
entries of a playlist its worker expands, held ``client_full`` past the limit, and their
release as the client's active jobs fall.

Every path that makes a client's jobs active (a submission, a retry, an expansion, a
release of its entries) locks the client's row first (``clients.lock``) and counts under
it, so they take the last places one at a time and the count never passes the limit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from service.db import jobs as job_rows
from service.db.models import Client, Job
from service.domain import BATCH
from service.domain.control import Hold
from service.domain.states import WAITING, Status

if TYPE_CHECKING:
    import uuid

    from sqlmodel import Session

_WAITING = [s.value for s in Status if s in WAITING]


def lock_room(session: Session, client_id: uuid.UUID, default_most: int | None) -> int | None:
    """Lock the client's row and say how many more of its jobs may be active now (None: no
    limit). The lock lasts until the transaction ends: insert what fits before it does."""
    stmt = (
        sa.select(Client.max_active_jobs)
        .where(Client.id == client_id)
        .with_for_update(key_share=True)
    )
    own = session.execute(stmt).scalar()
    most = own if own is not None else default_most
    if most is None:
        return None
    return max(0, most - job_rows.count_active(session, client_id))


def clients_waiting(session: Session) -> list[uuid.UUID]:
    """Clients with entries held ``client_full``, in id order (the order they are locked in)."""
    stmt = (
        sa.select(Job.client_id)
        .where(Job.held == Hold.CLIENT_FULL.value, Job.status.in_(_WAITING))
        .distinct()
        .order_by(Job.client_id)
    )
    return list(session.execute(stmt).scalars())


def release_entries(session: Session, client_id: uuid.UUID, default_most: int | None) -> list[Job]:
    """Give as many of the client's ``client_full`` entries room as its limit has now, best
    priority first; the caller publishes them after the commit."""
    room = lock_room(session, client_id, default_most)
    if room == 0:
        return []
    pick = (
        sa.select(Job.id)
        .where(
            Job.client_id == client_id,
            Job.held == Hold.CLIENT_FULL.value,
            Job.status.in_(_WAITING),
        )
        .order_by(Job.priority.desc(), Job.queued_at, Job.id)
        .limit(room if room is not None else BATCH)
    )
    stmt = (
        sa.update(Job)
        .where(Job.id.in_(pick.scalar_subquery()), Job.held == Hold.CLIENT_FULL.value)
        .values(held=None, updated_at=sa.func.now())
        .returning(Job)
        .execution_options(synchronize_session=False)
    )
    released = list(session.execute(stmt).scalars())
    return sorted(released, key=lambda j: (-j.priority, j.queued_at, j.id))
