"""How an attempt ends on the row: failed, released for a retry, handed back, or closed.

Every write here is a guarded update that names the lease owner, so a worker that
lost its job writes nothing. The attempt's own row (``job_attempts``) is closed in
the same transaction. A job that ends does so through ``work/ending.py``, which
closes its parent and announces its webhook.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog

from service.db import attempts as attempt_rows
from service.db import sites as site_rows
from service.db import transitions
from service.db.engine import wait_out_outage
from service.db.models import Job
from service.dispatch import publish_or_record
from service.domain.errors import ErrorClass
from service.domain.states import AttemptOutcome, Status
from service.errors import JobFailure, Transient
from service.fleet.breaker_events import BreakerEvent, BreakerMove, breaker_moved
from service.fleet.gate import site_defaults
from service.observe import worker_metrics
from service.webhooks.outbox import announce_deliveries
from service.work import storage
from service.work.ending import ending

if TYPE_CHECKING:
    import uuid
    from datetime import timedelta

    from structlog.stdlib import BoundLogger

    from service.db import Session
    from service.errors import Permanent
    from service.runtime import Runtime

log = structlog.get_logger(__name__)


RUNNING = (Status.RUNNING,)


GONE = "the job was cancelled, deleted or taken over"


def outcome_of(moved: Job | None) -> AttemptOutcome:
    """An attempt whose final write matched no row was abandoned, not successful."""
    return AttemptOutcome.SUCCEEDED if moved is not None else AttemptOutcome.ABANDONED


def hand_back(rt: Runtime, job: Job, owner: str, bound: BoundLogger) -> None:
    """Queue the job again now, without spending an attempt: this worker is going away."""
    with rt.db.session() as session:
        moved = transitions.requeue(session, job.id, owner=owner, attempts=Job.attempts - 1)
        close_attempt(
            session, job.id, owner, AttemptOutcome.HANDED_BACK, error_message="the worker shut down"
        )
    if moved is not None:
        publish_or_record(rt, moved)
    bound.info("handed back", reason="worker shutdown")


def close_attempt(
    session: Session,
    job_id: uuid.UUID,
    owner: str,
    outcome: AttemptOutcome,
    *,
    error_class: ErrorClass | None = None,
    error_message: str | None = None,
    along: Any = None,
) -> None:
    """Close the attempt's row and log its one summary line (outcome, duration, error class).

    ``along``: a write of the same transaction made by the same statement (a CTE of
    ``service/db``: the artifact, the probe's info)."""
    done = attempt_rows.finish(
        session,
        job_id,
        owner,
        outcome,
        error_class=error_class,
        error_message=error_message,
        along=along,
    )
    if done is None or done.started_at is None or done.finished_at is None:
        return
    seconds = (done.finished_at - done.started_at).total_seconds()
    worker_metrics.attempt_finished(done.step, outcome, seconds)
    log.info(
        "attempt finished",
        job_id=str(job_id),
        attempt=done.number,
        step=done.step,
        outcome=outcome,
        duration_s=round(seconds, 3),
        error_class=error_class,
    )


def fail(rt: Runtime, job: Job, owner: str, exc: Permanent, bound: BoundLogger) -> None:
    """A permanent error: the job fails with it (if this worker still holds the lease)."""
    with ending(rt) as ends:
        ends.job(
            job.id,
            Status.FAILED,
            owner=owner,
            only_from=RUNNING,
            error_class=exc.error_class,
            error_message=exc.message,
        )
        close_attempt(
            ends.session,
            job.id,
            owner,
            AttemptOutcome.FAILED,
            error_class=exc.error_class,
            error_message=exc.message,
        )
    bound.info("failed", error_class=exc.error_class, error=exc.message)


def release_for_retry(
    rt: Runtime, job: Job, owner: str, exc: BaseException, bound: BoundLogger
) -> None:
    """Give the job back as ``retrying``; the middleware adds when the next attempt is due.

    A file this attempt already moved into storage goes too: a running job has no
    artifact, so nothing there is anyone else's.
    """
    error_class = exc.error_class if isinstance(exc, JobFailure) else ErrorClass.unexpected(exc)
    message = str(exc) or type(exc).__name__  # a HaulError's str is its message
    reason = f"{error_class}: {message}"
    throttle = (
        exc if error_class == ErrorClass.RATE_LIMITED and isinstance(exc, Transient) else None
    )

    def release() -> tuple[Job | None, list[uuid.UUID]]:
        with rt.db.session() as session:
            told = [] if throttle is None else _throttled(rt, session, job, throttle, reason, bound)
            moved = transitions.move(
                session,
                job.id,
                Status.RETRYING,
                owner=owner,
                only_from=RUNNING,
                phase=None,
                last_error=reason[:2000],
                last_error_class=error_class,
            )
            close_attempt(
                session,
                job.id,
                owner,
                AttemptOutcome.RETRY,
                error_class=error_class,
                error_message=message[:2000],
            )
            return moved, told

    try:
        released, told = wait_out_outage(release, patience=rt.settings.database_wait_s)
    except Exception:
        bound.exception("could not record the failed attempt; the lease sweep will")
    else:
        announce_deliveries(rt, told)
        if released is not None:
            storage.remove_job_files(rt.settings.storage_dir, job.client_id, job.id)
    bound.warning("attempt failed, will retry", error_class=error_class, error=message)


def _throttled(
    rt: Runtime, session: Session, job: Job, exc: Transient, reason: str, bound: BoundLogger
) -> list[uuid.UUID]:
    """Count the throttle against the site's breaker for the job's identity; when the breaker
    is open, the job's retry waits until it lets a job through. When this throttle opened
    it, admins' webhooks are written: their ids, to announce after the commit."""
    site, identity = site_rows.identity_of(session, job.id, site_defaults(rt).keyed)
    if site is None:
        return []
    after = site_rows.throttled(session, site, identity, rt.settings.breaker_policy, reason)
    if after.retry_at is not None:
        exc.retry_after_s = max(0.0, (after.retry_at - datetime.now(UTC)).total_seconds())
    if not after.opened:
        return []
    bound.warning("site breaker opened", site=site, identity=identity, retry_at=after.retry_at)
    return breaker_moved(session, BreakerEvent.OPENED, BreakerMove.of(after.row))


def site_answered(
    rt: Runtime, session: Session, job_id: uuid.UUID, *, seen: bool = True
) -> list[uuid.UUID]:
    """An attempt succeeded: its site answers the job's identity, so its breaker closes.

    Nothing more than one lookup unless the breaker was open or half-open; then admins'
    webhooks are written: their ids, for the caller to announce after its commit.
    ``seen=False``: the claim saw no breaker for the job's identity, so not even the lookup.
    """
    if not seen:
        return []
    closed = site_rows.succeeded(session, job_id, site_defaults(rt).keyed)
    if closed is None:
        return []
    log.info("site breaker closed", site=closed.site, identity=closed.identity, job_id=str(job_id))
    move = BreakerMove.closed(closed.site, closed.identity, closed.reason)
    return breaker_moved(session, BreakerEvent.CLOSED, move)


def retry_scheduled(rt: Runtime, job_id: uuid.UUID, delay: timedelta) -> None:
    """The broker scheduled the next attempt: the row says when it is due."""
    with rt.db.session() as session:
        transitions.schedule_retry(session, job_id, delay)


def dead_lettered(rt: Runtime, job_id: uuid.UUID, retries: int) -> None:
    """The broker ran out of retries and dead-lettered the message: the job failed.

    A job that had already failed (a permanent error) only gets the time stamped.
    """
    with ending(rt) as ends:
        if ends.dead_lettered(job_id, f"retries exhausted after {retries} retries") is None:
            transitions.stamp_dead_letter(ends.session, job_id)
