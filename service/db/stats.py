"""Counts over the rows, for the metrics endpoint: the truth, not a process's memory."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from service.db.models import Job, JobAttempt, Subscription, SubscriptionEntry, WebhookDelivery

if TYPE_CHECKING:
    from sqlmodel import Session


def jobs_by_state(session: Session) -> list[tuple[str, str, int]]:
    """(status, step, count) of every job."""
    stmt = sa.select(Job.status, Job.step, sa.func.count()).group_by(Job.status, Job.step)
    return [(status, step, int(n)) for status, step, n in session.execute(stmt)]


def held_by_reason(session: Session) -> list[tuple[str, str, int]]:
    """(step, reason, count) of jobs held back: paused, or their queue or site full."""
    stmt = (
        sa.select(Job.step, Job.held, sa.func.count())
        .where(Job.held.is_not(None))
        .group_by(Job.step, Job.held)
    )
    return [(step, reason, int(n)) for step, reason, n in session.execute(stmt)]


def attempts_by_outcome(session: Session) -> list[tuple[str, str, str, int]]:
    """(step, outcome, error class or "", count) of every finished attempt."""
    error_class = sa.func.coalesce(JobAttempt.error_class, "")
    stmt = (
        sa.select(JobAttempt.step, JobAttempt.outcome, error_class, sa.func.count())
        .where(JobAttempt.outcome.is_not(None))
        .group_by(JobAttempt.step, JobAttempt.outcome, error_class)
    )
    return [(step, outcome, cls, int(n)) for step, outcome, cls, n in session.execute(stmt)]


def dead_letters_by_class(session: Session) -> list[tuple[str, int]]:
    """(error class, count) of jobs whose message went to ``.XQ``."""
    error_class = sa.func.coalesce(Job.error_class, "")
    stmt = (
        sa.select(error_class, sa.func.count())
        .where(Job.dead_lettered_at.is_not(None))
        .group_by(error_class)
    )
    return [(cls, int(n)) for cls, n in session.execute(stmt)]


def deliveries_by_status(session: Session) -> list[tuple[str, int]]:
    """(status, count) of webhook deliveries: pending, delivered, failed."""
    stmt = sa.select(WebhookDelivery.status, sa.func.count()).group_by(WebhookDelivery.status)
    return [(status, int(n)) for status, n in session.execute(stmt)]


def subscriptions_by_state(session: Session) -> list[tuple[str, int]]:
    """(state, count): paused, failing (its last check failed) or ok."""
    state = sa.case(
        (Subscription.paused_at.is_not(None), "paused"),
        (Subscription.last_outcome == "failed", "failing"),
        else_="ok",
    )
    stmt = sa.select(state, sa.func.count()).group_by(state)
    return [(s, int(n)) for s, n in session.execute(stmt)]


def subscription_entries_by_state(session: Session) -> list[tuple[str, int]]:
    """(state, count) of every entry the checks have found."""
    stmt = sa.select(SubscriptionEntry.state, sa.func.count()).group_by(SubscriptionEntry.state)
    return [(s, int(n)) for s, n in session.execute(stmt)]


def subscriptions_overdue_s(session: Session) -> float:
    """How long the most overdue unpaused subscription has waited past its due time."""
    lag = sa.func.extract("epoch", sa.func.now() - sa.func.min(Subscription.next_check_at))
    stmt = sa.select(sa.func.greatest(sa.func.coalesce(lag, 0), 0)).where(
        Subscription.paused_at.is_(None)
    )
    return float(session.execute(stmt).scalar_one())
