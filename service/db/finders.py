"""What the sweeps look for: expired leases, unpublished or overdue jobs, stranded
parents, and ended jobs old enough to prune; each a bounded batch on a partial index."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa

from service.db.models import Job
from service.db.sql import NOW
from service.domain.states import ACTIVE, TERMINAL, Phase, Status

if TYPE_CHECKING:
    import uuid

    from sqlmodel import Session


def expired_leases(session: Session, limit: int) -> list[Job]:
    """Running jobs whose worker stopped renewing its lease, oldest first."""
    stmt = (
        sa.select(Job)
        .where(Job.status == Status.RUNNING.value, Job.lease_expires_at < NOW())
        .order_by(Job.lease_expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.execute(stmt).scalars())


def unpublished(session: Session, older_than: timedelta, limit: int) -> list[Job]:
    """Queued jobs never published, or published long ago and never claimed."""
    stale = sa.or_(Job.published_at.is_(None), Job.published_at < NOW() - older_than)
    stmt = (
        sa.select(Job)
        .where(
            Job.status == Status.QUEUED.value,
            Job.held.is_(None),
            Job.queued_at < NOW() - timedelta(seconds=5),
            stale,
        )
        .order_by(Job.queued_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.execute(stmt).scalars())


def overdue_retries(session: Session, older_than: timedelta, limit: int) -> list[Job]:
    """Retrying jobs whose next attempt is long overdue: the delayed message was lost
    (the broker was down when the retry was scheduled) or never sent.

    A job republished here is not taken again until ``older_than`` has passed once more.
    """
    cutoff = NOW() - older_than
    stmt = (
        sa.select(Job)
        .where(
            Job.status == Status.RETRYING.value,
            Job.held.is_(None),
            Job.updated_at < cutoff,
            sa.func.coalesce(Job.next_attempt_at, Job.updated_at) < cutoff,
            sa.or_(Job.published_at.is_(None), Job.published_at < cutoff),
        )
        .order_by(Job.updated_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.execute(stmt).scalars())


def stranded_parents(session: Session, limit: int) -> list[uuid.UUID]:
    """Parents still running although no child is active (a finish that was missed)."""
    child = sa.orm.aliased(Job)
    active_child = sa.exists().where(
        child.parent_id == Job.id,
        child.status.in_([s.value for s in ACTIVE]),
    )
    stmt = (
        sa.select(Job.id)
        .where(
            Job.status == Status.RUNNING.value,
            Job.phase == Phase.AWAITING_CHILDREN.value,
            ~active_child,
        )
        .limit(limit)
    )
    return list(session.execute(stmt).scalars())


def prune_ended(
    session: Session, older_than: timedelta, limit: int
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Delete top-level jobs that ended long ago (children go with them by cascade).

    Locks in the order of playlist trees: the entries of the chosen jobs first, in id
    order, then the jobs, which are deleted only if they are still ended and old (a
    retry may have reopened one meanwhile). Returns (client_id, job_id) of every
    deleted job, children included, so their files can be removed after the commit.
    """
    old = sa.and_(
        Job.parent_id.is_(None),
        Job.status.in_([s.value for s in TERMINAL]),
        Job.finished_at < NOW() - older_than,
    )
    chosen = list(session.execute(sa.select(Job.id).where(old).limit(limit)).scalars())
    if not chosen:
        return []
    entries = sa.select(Job.id).where(Job.parent_id.in_(chosen)).order_by(Job.id)
    session.execute(entries.with_for_update())
    still_old = sa.select(Job.id).where(Job.id.in_(chosen), old).order_by(Job.id)
    ids = list(session.execute(still_old.with_for_update()).scalars())
    if not ids:
        return []
    doomed = sa.select(Job.client_id, Job.id).where(sa.or_(Job.id.in_(ids), Job.parent_id.in_(ids)))
    gone = [(client_id, job_id) for client_id, job_id in session.execute(doomed)]
    session.execute(sa.delete(Job).where(Job.id.in_(ids)))
    return gone
