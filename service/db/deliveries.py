"""Queries on ``webhook_deliveries`` and ``webhook_attempts``.

A delivery changes state only by a guarded UPDATE: a claim takes it for one
attempt (``claimed_by``/``claimed_until``, like a job's lease), and only the
claimant may record the outcome. A duplicate or late message finds the row
claimed, delivered, failed or not yet due, and does nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from service.db.models import WebhookAttempt, WebhookDelivery
from service.domain.states import TERMINAL, DeliveryStatus, DeliverySubject

if TYPE_CHECKING:
    import uuid

    from sqlmodel import Session

_NOW = sa.func.now
_PENDING = DeliveryStatus.PENDING.value
#: A retry message may arrive this much before the row's due time (clocks differ a little).
DUE_SLACK = timedelta(seconds=2)


def _returning_one(session: Session, stmt: Any) -> WebhookDelivery | None:
    result = session.execute(
        stmt.returning(WebhookDelivery).execution_options(synchronize_session=False)
    )
    return result.scalars().first()


def get(session: Session, delivery_id: uuid.UUID) -> WebhookDelivery | None:
    return session.get(WebhookDelivery, delivery_id, populate_existing=True)


def for_job(session: Session, job_id: uuid.UUID) -> list[WebhookDelivery]:
    """A job's deliveries, newest first."""
    stmt = (
        sa.select(WebhookDelivery)
        .where(WebhookDelivery.job_id == job_id)
        .order_by(sa.desc(WebhookDelivery.created_at), sa.desc(WebhookDelivery.id))
    )
    return list(session.execute(stmt).scalars())


def recent_for_client(session: Session, client_id: uuid.UUID, limit: int) -> list[WebhookDelivery]:
    """The client's newest deliveries, of any job, newest first (the dashboard's list)."""
    stmt = (
        sa.select(WebhookDelivery)
        .where(WebhookDelivery.client_id == client_id)
        .order_by(sa.desc(WebhookDelivery.created_at), sa.desc(WebhookDelivery.id))
        .limit(limit)
    )
    return list(session.execute(stmt).scalars())


def attempts_of(
    session: Session, delivery_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[WebhookAttempt]]:
    """The HTTP attempts of each delivery, oldest first."""
    if not delivery_ids:
        return {}
    stmt = (
        sa.select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id.in_(delivery_ids))
        .order_by(WebhookAttempt.id)
    )
    found: dict[uuid.UUID, list[WebhookAttempt]] = {}
    for attempt in session.execute(stmt).scalars():
        found.setdefault(attempt.delivery_id, []).append(attempt)
    return found


def with_attempts(
    session: Session, found: list[WebhookDelivery]
) -> list[tuple[WebhookDelivery, list[WebhookAttempt]]]:
    """Each delivery with its HTTP attempts, oldest first (one query for all of them)."""
    attempts = attempts_of(session, [d.id for d in found])
    return [(d, attempts.get(d.id, [])) for d in found]


def latest_status(session: Session, job_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Each job's ``callback_status``: the status of its newest delivery."""
    if not job_ids:
        return {}
    # A job has a handful of deliveries at most: oldest first, the last one written wins.
    stmt = (
        sa.select(WebhookDelivery.job_id, WebhookDelivery.status)
        .where(WebhookDelivery.job_id.in_(job_ids))
        .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
    )
    return {job_id: status for job_id, status in session.execute(stmt)}


def unpublished(session: Session, delivery_ids: list[uuid.UUID]) -> list[WebhookDelivery]:
    """These deliveries, if still pending and their message was not sent yet."""
    return _unpublished(session, WebhookDelivery.id, delivery_ids)


def for_subject(
    session: Session,
    client_id: uuid.UUID,
    kind: DeliverySubject,
    subject_id: uuid.UUID,
    *,
    limit: int = 100,
) -> list[WebhookDelivery]:
    """The client's deliveries about one subscription (or site), newest first."""
    stmt = (
        sa.select(WebhookDelivery)
        .where(
            WebhookDelivery.client_id == client_id,
            WebhookDelivery.subject_kind == kind.value,
            WebhookDelivery.subject_id == subject_id,
        )
        .order_by(sa.desc(WebhookDelivery.created_at), sa.desc(WebhookDelivery.id))
        .limit(limit)
    )
    return list(session.execute(stmt).scalars())


def create_event(session: Session, delivery: WebhookDelivery) -> WebhookDelivery:
    """Add a delivery about a subject other than a job, its body already fixed; it is
    sent after the commit (``webhooks.outbox.announce_deliveries``) or by the sweep."""
    if delivery.subject_kind == DeliverySubject.JOB.value or delivery.body is None:
        raise ValueError("a job's delivery is made by its terminal transition")
    session.add(delivery)
    session.flush()
    return delivery


def prune_ended_events(session: Session, older_than: timedelta, limit: int) -> int:
    """Delete delivered or failed deliveries about subjects other than jobs (a job's go
    with the job) made more than ``older_than`` ago; how many."""
    chosen = (
        sa.select(WebhookDelivery.id)
        .where(
            WebhookDelivery.job_id.is_(None),
            WebhookDelivery.status != _PENDING,
            WebhookDelivery.created_at < _NOW() - older_than,
        )
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    gone = session.execute(
        sa.delete(WebhookDelivery)
        .where(WebhookDelivery.id.in_(chosen))
        .returning(WebhookDelivery.id)
    )
    return len(gone.all())


def unpublished_for_jobs(session: Session, job_ids: list[uuid.UUID]) -> list[WebhookDelivery]:
    """Pending deliveries of these jobs whose message was not sent yet."""
    return _unpublished(session, WebhookDelivery.job_id, job_ids)


def _unpublished(session: Session, column: Any, ids: list[uuid.UUID]) -> list[WebhookDelivery]:
    if not ids:
        return []
    stmt = (
        sa.select(WebhookDelivery)
        .where(
            column.in_(ids),
            WebhookDelivery.status == _PENDING,
            WebhookDelivery.published_at.is_(None),
        )
        .with_for_update(skip_locked=True)
    )
    return list(session.execute(stmt).scalars())


def stale(
    session: Session, older_than: timedelta, limit: int, *, settle: timedelta = timedelta(seconds=5)
) -> list[WebhookDelivery]:
    """Pending deliveries nobody is working on whose message was never sent (for
    ``settle``: the commit that made it publishes it), or whose next attempt is long
    overdue (the message was lost, or its worker died)."""
    cutoff = _NOW() - older_than
    never_sent = sa.and_(
        WebhookDelivery.published_at.is_(None),
        WebhookDelivery.created_at < _NOW() - settle,
    )
    overdue = sa.and_(
        WebhookDelivery.published_at < cutoff,
        sa.func.coalesce(WebhookDelivery.next_attempt_at, WebhookDelivery.published_at) < cutoff,
    )
    stmt = (
        sa.select(WebhookDelivery)
        .where(
            WebhookDelivery.status == _PENDING,
            sa.or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < _NOW()),
            sa.or_(never_sent, overdue),
        )
        .order_by(WebhookDelivery.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.execute(stmt).scalars())


def unpublish(session: Session, delivery_id: uuid.UUID) -> None:
    """Its message was spent while deliveries are paused: the resume sends it again."""
    stmt = (
        sa.update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == _PENDING,
            sa.or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < _NOW()),
        )
        .values(published_at=None, updated_at=_NOW())
    )
    session.execute(stmt)


def mark_published(session: Session, delivery_ids: list[uuid.UUID]) -> None:
    stmt = (
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(delivery_ids), WebhookDelivery.status == _PENDING)
        .values(published_at=_NOW(), updated_at=_NOW())
    )
    session.execute(stmt)


def claim(
    session: Session, delivery_id: uuid.UUID, owner: str, lease: timedelta, limit: int
) -> WebhookDelivery | None:
    """Take a pending, due, unclaimed delivery for one attempt; counts the attempt.

    ``limit`` fixes ``max_attempts`` on the first claim (``HAUL_WEBHOOK_MAX_ATTEMPTS``).
    """
    budget = sa.func.coalesce(WebhookDelivery.max_attempts, limit)
    stmt = (
        sa.update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == _PENDING,
            WebhookDelivery.attempts < budget,
            sa.or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < _NOW()),
            sa.or_(
                WebhookDelivery.next_attempt_at.is_(None),
                WebhookDelivery.next_attempt_at <= _NOW() + DUE_SLACK,
            ),
        )
        .values(
            attempts=WebhookDelivery.attempts + 1,
            max_attempts=budget,
            claimed_by=owner,
            claimed_until=_NOW() + lease,
            updated_at=_NOW(),
        )
    )
    return _returning_one(session, stmt)


def fail_exhausted(session: Session, delivery_id: uuid.UUID, limit: int) -> WebhookDelivery | None:
    """Fail a pending delivery with no attempts left that nobody holds (its last
    attempt's worker died before writing an outcome)."""
    stmt = (
        sa.update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == _PENDING,
            WebhookDelivery.attempts >= sa.func.coalesce(WebhookDelivery.max_attempts, limit),
            sa.or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < _NOW()),
        )
        .values(
            status=DeliveryStatus.FAILED.value,
            claimed_by=None,
            claimed_until=None,
            next_attempt_at=None,
            last_error=sa.func.coalesce(
                WebhookDelivery.last_error, "gave up: no attempt left without an outcome"
            ),
            updated_at=_NOW(),
        )
    )
    return _returning_one(session, stmt)


def set_body(session: Session, delivery_id: uuid.UUID, owner: str, body: str) -> None:
    """Fix the body at the first attempt; later attempts send the same bytes."""
    stmt = (
        sa.update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.claimed_by == owner,
            WebhookDelivery.body.is_(None),
        )
        .values(body=body)
    )
    session.execute(stmt)


def record_attempt(session: Session, attempt: WebhookAttempt) -> None:
    session.add(attempt)
    session.flush()


def finish(
    session: Session,
    delivery_id: uuid.UUID,
    owner: str,
    status: DeliveryStatus,
    *,
    last_error: str | None,
) -> WebhookDelivery | None:
    """Record a final outcome (delivered or failed); only the claimant may."""
    values: dict[str, Any] = {
        "status": status.value,
        "claimed_by": None,
        "claimed_until": None,
        "next_attempt_at": None,
        "last_error": last_error,
        "updated_at": _NOW(),
    }
    if status is DeliveryStatus.DELIVERED:
        values["delivered_at"] = _NOW()
    stmt = (
        sa.update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == _PENDING,
            WebhookDelivery.claimed_by == owner,
        )
        .values(**values)
    )
    return _returning_one(session, stmt)


def schedule_retry(
    session: Session, delivery_id: uuid.UUID, owner: str, delay: timedelta, last_error: str
) -> WebhookDelivery | None:
    """Release the claim and say when the next attempt is due (its message is the retry)."""
    stmt = (
        sa.update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == _PENDING,
            WebhookDelivery.claimed_by == owner,
        )
        .values(
            claimed_by=None,
            claimed_until=None,
            next_attempt_at=_NOW() + delay,
            published_at=_NOW(),
            last_error=last_error,
            updated_at=_NOW(),
        )
    )
    return _returning_one(session, stmt)


def rearm(
    session: Session, delivery_id: uuid.UUID, *, url: str, from_default: bool, limit: int
) -> WebhookDelivery | None:
    """Send an ended delivery again (same ``webhook-id``) with a fresh attempt budget."""
    stmt = (
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status != _PENDING)
        .values(
            status=_PENDING,
            url=url,
            from_default=from_default,
            max_attempts=WebhookDelivery.attempts + limit,
            claimed_by=None,
            claimed_until=None,
            next_attempt_at=None,
            published_at=None,
            delivered_at=None,
            last_error=None,
            updated_at=_NOW(),
        )
    )
    return _returning_one(session, stmt)


def create_for_job(
    session: Session, job_id: uuid.UUID, *, url: str, from_default: bool
) -> WebhookDelivery | None:
    """A new delivery of an ended job's current state (as the trigger would have made)."""
    job = sa.table("jobs", sa.column("id"), sa.column("client_id"), sa.column("status"))
    snapshot = sa.func.to_jsonb(sa.literal_column("jobs"))
    select = sa.select(
        sa.func.gen_random_uuid(),
        job.c.id,
        job.c.client_id,
        sa.literal("job.") + job.c.status,
        sa.literal(url),
        sa.literal(from_default),
        snapshot,
        sa.literal(_PENDING),
        sa.literal(0),
    ).where(job.c.id == job_id, job.c.status.in_([s.value for s in TERMINAL]))
    stmt = sa.insert(WebhookDelivery).from_select(
        [
            "id",
            "job_id",
            "client_id",
            "event",
            "url",
            "from_default",
            "job_snapshot",
            "status",
            "attempts",
        ],
        select,
    )
    return _returning_one(session, stmt)
