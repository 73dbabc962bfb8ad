"""Queries on ``job_attempts``: one row per claim of a job."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from service.db.models import JobAttempt
from service.db.sql import detached
from service.domain.errors import ErrorClass

if TYPE_CHECKING:
    import uuid
    from datetime import timedelta

    from sqlmodel import Session

    from service.domain.states import AttemptOutcome


#: Every column of ``job_attempts``: the closed attempt comes back as a plain row.
_COLUMNS = tuple(JobAttempt.__table__.c)


def start(
    session: Session, job_id: uuid.UUID, number: int, step: str, worker: str, ytdlp_version: str
) -> JobAttempt:
    attempt = JobAttempt(
        job_id=job_id, number=number, step=step, worker=worker, ytdlp_version=ytdlp_version
    )
    session.add(attempt)
    session.flush()
    return attempt


def finish(
    session: Session,
    job_id: uuid.UUID,
    worker: str,
    outcome: AttemptOutcome,
    *,
    error_class: ErrorClass | None = None,
    error_message: str | None = None,
    along: Any = None,
) -> JobAttempt | None:
    """Close this worker's open attempt on the job; None if there was none (the job is gone).

    ``along``: a data-modifying CTE written by the same statement (the artifact of a
    success, the probe's info for the download), one round trip instead of two.
    """
    stmt = (
        sa.update(JobAttempt)
        .where(
            JobAttempt.job_id == job_id,
            JobAttempt.worker == worker,
            JobAttempt.finished_at.is_(None),
        )
        .values(
            finished_at=sa.func.now(),
            outcome=outcome,
            error_class=error_class,
            error_message=error_message,
        )
        .returning(*_COLUMNS)
        .execution_options(synchronize_session=False)
    )
    if along is not None:
        stmt = stmt.add_cte(along)
    row = session.execute(stmt).first()
    return detached(JobAttempt, row._mapping) if row is not None else None


def close_abandoned(
    session: Session, job_id: uuid.UUID, outcome: AttemptOutcome, error_message: str
) -> None:
    """Close attempts left open by a worker that died (found by the lease sweep)."""
    stmt = (
        sa.update(JobAttempt)
        .where(JobAttempt.job_id == job_id, JobAttempt.finished_at.is_(None))
        .values(
            finished_at=sa.func.now(),
            outcome=outcome,
            error_class=ErrorClass.LEASE_EXPIRED,
            error_message=error_message,
        )
    )
    session.execute(stmt)


def for_job(session: Session, job_id: uuid.UUID) -> list[JobAttempt]:
    stmt = sa.select(JobAttempt).where(JobAttempt.job_id == job_id).order_by(JobAttempt.id)
    return list(session.execute(stmt).scalars())


def by_version(
    session: Session, window: timedelta
) -> list[tuple[str | None, str, str | None, int]]:
    """Attempts that ended within ``window`` (by the database's clock), counted by yt-dlp
    version, outcome and error class."""
    stmt = (
        sa.select(
            JobAttempt.ytdlp_version,
            JobAttempt.outcome,
            JobAttempt.error_class,
            sa.func.count(),
        )
        .where(
            JobAttempt.finished_at >= sa.func.now() - window,
            JobAttempt.outcome.is_not(None),
        )
        .group_by(JobAttempt.ytdlp_version, JobAttempt.outcome, JobAttempt.error_class)
    )
    return [(v, o, e, n) for v, o, e, n in session.execute(stmt)]
