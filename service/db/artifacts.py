"""Queries on ``artifacts``: the stored file of a finished job."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from service.db.models import Artifact, Job

if TYPE_CHECKING:
    import uuid

    from sqlmodel import Session


def insert(session: Session, artifact: Artifact) -> Artifact:
    session.add(artifact)
    session.flush()
    return artifact


def inserted(artifact: Artifact) -> Any:
    """The INSERT of ``artifact`` as a CTE, for a statement that writes it along (the
    success's close of its attempt: ``attempts.finish``)."""
    fields = artifact.model_dump(exclude={"created_at"})
    return sa.insert(Artifact).values(**fields).cte("stored")


def for_job(session: Session, job_id: uuid.UUID) -> Artifact | None:
    return session.execute(sa.select(Artifact).where(Artifact.job_id == job_id)).scalars().first()


def for_jobs(session: Session, job_ids: list[uuid.UUID]) -> list[Artifact]:
    """Artifacts of several jobs (a job and its children, before a delete)."""
    if not job_ids:
        return []
    stmt = sa.select(Artifact).where(Artifact.job_id.in_(job_ids))
    return list(session.execute(stmt).scalars())


def bytes_stored(session: Session, client_id: uuid.UUID) -> int:
    """What a client's files take up now, for its storage quota."""
    stmt = sa.select(sa.func.coalesce(sa.func.sum(Artifact.size), 0)).where(
        Artifact.client_id == client_id
    )
    return int(session.execute(stmt).scalar_one())


def stored_under_lock(session: Session, client_id: uuid.UUID) -> int:
    """What a client's files take up, with its storage lock held until the transaction ends.

    The lock (transaction-scoped, advisory) serializes the stores of one client, so two
    files checked against the same room cannot both be stored past the quota.
    """
    key = f"haul.storage:{client_id}"
    session.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(key, 0))))
    return bytes_stored(session, client_id)


def owners(session: Session, job_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[str, str | None]]:
    """Of ``job_ids``, each job that exists: its status and its artifact's path, if any."""
    if not job_ids:
        return {}
    stmt = (
        sa.select(Job.id, Job.status, Artifact.path)
        .outerjoin(Artifact, Artifact.job_id == Job.id)
        .where(Job.id.in_(job_ids))
    )
    return {job_id: (status, path) for job_id, status, path in session.execute(stmt)}
