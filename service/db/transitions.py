"""A job's state changes: each one guarded UPDATE … RETURNING.

A guarded update names the states it may start from, taken from the state
machine (:func:`from_states`), and, for a worker, the lease it must hold. When it
matches no row, the caller learns that the job moved on (cancelled, deleted,
taken over) and writes nothing. The database holds the same table (a trigger,
migration 0008) and refuses any other move.

A job *ends* (``succeeded``, ``failed``, ``cancelled``) through :func:`end` alone,
which only ``service/work/ending.py`` calls, directly or through the few
functions here and in ``trees`` built on it (tests/unit/test_ending.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from service.db import extractions
from service.db.models import Job, JobAttempt
from service.db.sql import JOB_COLUMNS, NOW, job_of, returning_all, returning_one
from service.domain.errors import ErrorClass
from service.domain.states import TERMINAL, WAITING, Phase, Status, Step, sources

if TYPE_CHECKING:
    import uuid
    from collections.abc import Iterable
    from datetime import timedelta

    from sqlmodel import Session


def from_states(to: Status, only_from: Iterable[Status] | None = None) -> Any:
    """``status IN (…)``: the states a move to ``to`` may start from.

    All the state machine allows (:func:`sources`), or the subset ``only_from``;
    naming a state the machine does not allow is a bug, refused here.
    """
    allowed = sources(to)
    chosen = allowed if only_from is None else tuple(only_from)
    stray = [s.value for s in chosen if s not in allowed]
    if stray:
        raise ValueError(f"the state machine has no move from {stray} to {to.value}")
    return Job.status.in_([s.value for s in chosen])


def _changes(to: Status, values: dict[str, Any]) -> dict[str, Any]:
    """The row a move leaves: the new state, no hold; leaving ``running`` clears the lease."""
    changes: dict[str, Any] = {"status": to.value, "held": None, "updated_at": NOW(), **values}
    if to is not Status.RUNNING:
        changes.setdefault("lease_owner", None)
        changes.setdefault("lease_expires_at", None)
    if to in TERMINAL:
        changes.setdefault("finished_at", NOW())
        changes.setdefault("phase", None)
    return changes


def move(
    session: Session,
    job_id: uuid.UUID,
    to: Status,
    *,
    owner: str | None = None,
    only_from: tuple[Status, ...] | None = None,
    **values: Any,
) -> Job | None:
    """Move a job to ``to`` (not an end: see :func:`end`) if the state machine allows it.

    ``owner`` additionally requires that this worker still holds the lease.
    Leaving ``running`` always clears the lease.
    """
    if to in TERMINAL:
        raise ValueError(f"a job ends ({to.value}) through end(), not move()")
    stmt = sa.update(Job).where(Job.id == job_id, from_states(to, only_from))
    if owner is not None:
        stmt = stmt.where(Job.lease_owner == owner)
    return returning_one(session, stmt.values(**_changes(to, values)))


def end(
    session: Session,
    to: Status,
    *where: Any,
    owner: str | None = None,
    only_from: tuple[Status, ...] | None = None,
    **values: Any,
) -> list[Job]:
    """The one statement that ends jobs: the rows matching ``where`` move to ``to``.

    Guarded like every move (the table's sources of ``to``, or ``only_from``, and the
    lease when ``owner`` is given); the lease and the phase are cleared and
    ``finished_at`` stamped. Returns the rows it ended; the caller (the ending, in
    ``service/work/ending.py``) closes their parents, commits and announces them.
    """
    if to not in TERMINAL:
        raise ValueError(f"{to.value} is not an end; use move()")
    stmt = sa.update(Job).where(*where, from_states(to, only_from))
    if owner is not None:
        stmt = stmt.where(Job.lease_owner == owner)
    return returning_all(session, stmt.values(**_changes(to, values)))


def end_job(
    session: Session,
    job_id: uuid.UUID,
    to: Status,
    *,
    owner: str | None = None,
    only_from: tuple[Status, ...] | None = None,
    **values: Any,
) -> Job | None:
    """End one job (:func:`end`); None when it had moved on."""
    ended = end(session, to, Job.id == job_id, owner=owner, only_from=only_from, **values)
    return ended[0] if ended else None


def _claimable() -> Any:
    """Waiting for a worker, or running under a lease that expired (a takeover, not a move)."""
    return sa.or_(
        from_states(Status.RUNNING, WAITING),
        sa.and_(Job.status == Status.RUNNING.value, Job.lease_expires_at < NOW()),
    )


def requeue(
    session: Session, job_id: uuid.UUID, *, owner: str | None = None, **values: Any
) -> Job | None:
    """Put a running job back in the queue, as if just submitted; the caller publishes it.

    The one way back from ``running`` to ``queued``: the probe handing over to the
    download, a worker shutting down, the sweep taking an expired lease.
    """
    changes = {"phase": None, "queued_at": NOW(), "published_at": None, **values}
    return move(session, job_id, Status.QUEUED, owner=owner, only_from=(Status.RUNNING,), **changes)


def _claiming() -> Any:
    """The guarded UPDATE of a claim, with its values as bound parameters: takes the
    lease and counts the attempt."""
    return (
        sa.update(Job)
        .where(
            Job.id == sa.bindparam("b_job_id"),
            Job.step == sa.bindparam("b_step"),
            _claimable(),
            Job.attempts < Job.max_attempts,
        )
        .values(
            status=Status.RUNNING.value,
            phase=sa.bindparam("b_phase", type_=sa.String),
            held=None,
            lease_owner=sa.bindparam("b_owner", type_=sa.String),
            lease_expires_at=NOW() + sa.bindparam("b_lease", type_=sa.Interval),
            attempts=Job.attempts + 1,
            started_at=sa.func.coalesce(Job.started_at, NOW()),
            next_attempt_at=None,
            updated_at=NOW(),
        )
        .returning(*JOB_COLUMNS)
    )


def _attempt_statement() -> Any:
    """The claim, the attempt's row and (for a download) the probe's info taken, as one
    statement returning a plain row."""
    claimed = _claiming().cte("claimed")
    attempt = sa.insert(JobAttempt).from_select(
        ["job_id", "number", "step", "worker", "ytdlp_version"],
        sa.select(
            claimed.c.id,
            claimed.c.attempts,
            claimed.c.step,
            sa.bindparam("b_owner", type_=sa.String),
            sa.bindparam("b_ytdlp_version", type_=sa.String),
        ),
    )
    taken = extractions.taken_by(claimed)
    probed = sa.select(taken.c.info).scalar_subquery().label("probed")
    return sa.select(claimed, probed).add_cte(attempt.cte("attempt"))


#: Built once; SQLAlchemy compiles each once per engine and caches it.
_CLAIM = _claiming()
_CLAIM_ATTEMPT = _attempt_statement()


def _claim_params(
    job_id: uuid.UUID, step: Step, owner: str, lease: timedelta, phase: Phase
) -> dict[str, Any]:
    return {
        "b_job_id": job_id,
        "b_step": step.value,
        "b_phase": phase.value,
        "b_owner": owner,
        "b_lease": lease,
    }


def claim(
    session: Session, job_id: uuid.UUID, step: Step, owner: str, lease: timedelta, phase: Phase
) -> Job | None:
    """Take the job for this worker: from queued/retrying, or running with an expired lease.

    Counts the attempt in the row, so a job that kills its worker cannot loop forever.
    """
    row = session.execute(_CLAIM, _claim_params(job_id, step, owner, lease, phase)).first()
    return job_of(row) if row is not None else None


@dataclass(frozen=True)
class Attempt:
    """A claimed job, and the probe's info for its download when one was kept."""

    job: Job
    probed: dict[str, Any] | None


def claim_attempt(
    session: Session,
    job_id: uuid.UUID,
    step: Step,
    owner: str,
    lease: timedelta,
    phase: Phase,
    ytdlp_version: str,
) -> Attempt | None:
    """:func:`claim`, and in the same statement the attempt's row (``job_attempts``) and,
    for a download, the probe's info taken from ``job_extractions`` (read once)."""
    params = _claim_params(job_id, step, owner, lease, phase) | {"b_ytdlp_version": ytdlp_version}
    row = session.execute(_CLAIM_ATTEMPT, params).first()
    if row is None:
        return None
    probed = row.probed
    return Attempt(job_of(row), probed if isinstance(probed, dict) else None)


def heartbeat(
    session: Session, job_id: uuid.UUID, owner: str, lease: timedelta, **progress: Any
) -> bool:
    """Renew the lease and write progress; False when this worker no longer holds the job."""
    stmt = (
        sa.update(Job)
        .where(Job.id == job_id, Job.status == Status.RUNNING.value, Job.lease_owner == owner)
        .values(lease_expires_at=NOW() + lease, updated_at=NOW(), **progress)
        .execution_options(synchronize_session=False)
    )
    return session.execute(stmt).rowcount == 1


def await_children(
    session: Session, job_id: uuid.UUID, owner: str, *, info: dict[str, Any]
) -> Job | None:
    """A probed playlist stays ``running`` without a lease until its children finish."""
    stmt = (
        sa.update(Job)
        .where(Job.id == job_id, Job.status == Status.RUNNING.value, Job.lease_owner == owner)
        .values(
            phase=Phase.AWAITING_CHILDREN.value,
            lease_owner=None,
            lease_expires_at=None,
            info=info,
            last_error=None,
            last_error_class=None,
            updated_at=NOW(),
        )
    )
    return returning_one(session, stmt)


def fail_exhausted(session: Session, job_id: uuid.UUID) -> Job | None:
    """Fail a job that was claimed ``max_attempts`` times without an outcome.

    This is what stops a job that kills its worker (redelivered forever otherwise):
    met at claim time, or by the lease sweep when its last worker stopped answering.
    """
    ended = end(
        session,
        Status.FAILED,
        Job.id == job_id,
        _claimable(),
        Job.attempts >= Job.max_attempts,
        error_class=ErrorClass.ATTEMPTS_EXHAUSTED,
        error_message=sa.func.concat(
            "gave up after ", Job.attempts, " attempts without an outcome"
        ),
    )
    return ended[0] if ended else None


def schedule_retry(session: Session, job_id: uuid.UUID, delay: timedelta) -> None:
    """Record when the next attempt of a ``retrying`` job is due."""
    stmt = (
        sa.update(Job)
        .where(Job.id == job_id, Job.status == Status.RETRYING.value)
        .values(next_attempt_at=NOW() + delay, updated_at=NOW())
    )
    session.execute(stmt)


def dead_letter(session: Session, job_id: uuid.UUID, fallback_reason: str) -> Job | None:
    """The message went to ``.XQ``: the row says ``failed`` with the last error it saw.

    A permanent failure was already written by the worker that met it; then this
    matches nothing and :func:`stamp_dead_letter` adds the time of the dead letter.
    """
    ended = end(
        session,
        Status.FAILED,
        Job.id == job_id,
        only_from=tuple(WAITING),
        next_attempt_at=None,
        error_class=sa.func.coalesce(Job.last_error_class, ErrorClass.DEAD_LETTER.value),
        error_message=sa.func.coalesce(Job.last_error, fallback_reason),
        dead_lettered_at=NOW(),
    )
    return ended[0] if ended else None


def stamp_dead_letter(session: Session, job_id: uuid.UUID) -> Job | None:
    """A job that had already failed: only the time its message was dead-lettered."""
    stamp = (
        sa.update(Job)
        .where(
            Job.id == job_id,
            Job.status == Status.FAILED.value,
            Job.dead_lettered_at.is_(None),
        )
        .values(dead_lettered_at=NOW(), updated_at=NOW())
    )
    return returning_one(session, stamp)
