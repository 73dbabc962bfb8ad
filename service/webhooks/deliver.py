"""Deliver one webhook: claim the delivery row, POST the signed event, record the attempt,
and say what happens next (delivered, retry in N ms, failed, or dropped), as a
worker's result does in Oban.

A delivery is never retried when the egress policy refused its address or the
receiver answered 410 Gone (which also disables the client's default endpoint
when that is where it went).
"""

from __future__ import annotations

import random
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

import structlog

from service.db import artifacts as artifact_rows
from service.db import clients as client_rows
from service.db import deliveries as delivery_rows
from service.db import trees as tree_rows
from service.db.engine import wait_out_outage
from service.db.models import WebhookAttempt
from service.domain.states import DeliveryStatus
from service.webhooks import http, signing
from service.webhooks.outbox import _paused
from service.webhooks.signing import signing_secrets

if TYPE_CHECKING:
    import uuid

    from service.db.models import WebhookDelivery
    from service.runtime import Runtime
    from service.settings import Settings

log = structlog.get_logger(__name__)


GONE = 410


class Next(StrEnum):
    """What a delivery attempt leads to."""

    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"
    DROPPED = "dropped"


@dataclass(frozen=True)
class Outcome:
    next: Next
    #: For :attr:`Next.RETRY`: when to try again.
    delay_ms: int | None = None


def delivery_lease(settings: Settings) -> timedelta:
    """How long one attempt may hold a delivery: the POST's whole deadline
    (``HAUL_WEBHOOK_TIMEOUT_S``) plus 10 s for its claim and record; also the actor's
    time limit, a backstop the deadline should never reach."""
    return timedelta(seconds=settings.webhook_timeout_s + 10)


def backoff(settings: Settings, failed_attempts: int) -> timedelta:
    """Exponential from ``HAUL_WEBHOOK_MIN_BACKOFF_MS``, jittered up to half again, capped."""
    base = settings.webhook_min_backoff_ms * 2 ** max(0, min(failed_attempts - 1, 32))
    jittered = base * random.uniform(1.0, 1.5)  # noqa: S311  (spreading load, not a secret)
    return timedelta(milliseconds=min(jittered, settings.webhook_max_backoff_ms))


@dataclass(frozen=True)
class _Claimed:
    delivery: WebhookDelivery
    body: str
    signing: list[str]


def deliver(rt: Runtime, delivery_id: uuid.UUID) -> Outcome:
    """Make one attempt of a delivery, if it is this message's to make."""
    settings = rt.settings
    owner = f"{settings.worker_name}/{secrets.token_hex(4)}"
    claimed = wait_out_outage(
        lambda: _claim(rt, delivery_id, owner), patience=settings.database_wait_s
    )
    if isinstance(claimed, Outcome):
        return claimed
    delivery = claimed.delivery
    bound = log.bind(
        delivery_id=str(delivery.id),
        job_id=str(delivery.job_id) if delivery.job_id is not None else None,
        subject=delivery.subject_kind,
        subject_id=str(delivery.subject_id) if delivery.subject_id is not None else None,
        client_id=str(delivery.client_id),
        attempt=delivery.attempts,
    )
    answer = http.post(
        delivery.url,
        claimed.body,
        signing.headers(str(delivery.id), int(time.time()), claimed.body, claimed.signing),
        policy=settings.egress_policy,
        timeout=settings.webhook_timeout_s,
    )
    outcome = _judge(settings, delivery, answer)
    wait_out_outage(
        lambda: _record(rt, delivery, owner, answer, outcome), patience=settings.database_wait_s
    )
    bound.info(
        "webhook attempt",
        outcome=outcome.next.value,
        status_code=answer.status_code,
        latency_ms=answer.latency_ms,
        error=answer.error,
        retry_in_ms=outcome.delay_ms,
    )
    return outcome


def _claim(rt: Runtime, delivery_id: uuid.UUID, owner: str) -> _Claimed | Outcome:
    """One transaction: the claimed delivery with its body and secrets, or why not."""
    settings = rt.settings
    limit = settings.webhook_max_attempts
    with rt.db.session() as session:
        if _paused(session):
            delivery_rows.unpublish(session, delivery_id)
            log.info("webhook held: callbacks are paused", delivery_id=str(delivery_id))
            return Outcome(Next.DROPPED)
        delivery = delivery_rows.claim(session, delivery_id, owner, delivery_lease(settings), limit)
        if delivery is None:
            if delivery_rows.fail_exhausted(session, delivery_id, limit) is not None:
                log.warning("webhook delivery gave up", delivery_id=str(delivery_id))
                return Outcome(Next.FAILED)
            log.info("webhook message dropped: not claimable", delivery_id=str(delivery_id))
            return Outcome(Next.DROPPED)
        client = client_rows.get(session, delivery.client_id)
        body = delivery.body
        if body is None:  # only a job's: every other subject's body is fixed when it is made
            assert delivery.job_id is not None
            artifact = artifact_rows.for_job(session, delivery.job_id)
            children = tree_rows.children(session, [delivery.job_id]).get(delivery.job_id)
            body = signing.event_body(delivery, artifact, children)
            delivery_rows.set_body(session, delivery.id, owner, body)
    secrets_now = signing_secrets(client, settings.webhook_secret_grace_s) if client else []
    return _Claimed(delivery, body, secrets_now)


def _judge(settings: Settings, delivery: WebhookDelivery, answer: http.Answer) -> Outcome:
    if answer.ok:
        return Outcome(Next.DELIVERED)
    if answer.refused or answer.status_code == GONE:
        return Outcome(Next.FAILED)
    if delivery.attempts >= (delivery.max_attempts or settings.webhook_max_attempts):
        return Outcome(Next.FAILED)
    delay = backoff(settings, delivery.attempts)
    return Outcome(Next.RETRY, delay_ms=int(delay.total_seconds() * 1000))


def _record(
    rt: Runtime,
    delivery: WebhookDelivery,
    owner: str,
    answer: http.Answer,
    outcome: Outcome,
) -> None:
    """The attempt row and the delivery's new state, in one transaction."""
    with rt.db.session() as session:
        delivery_rows.record_attempt(
            session,
            WebhookAttempt(
                delivery_id=delivery.id,
                number=delivery.attempts,
                url=delivery.url,
                status_code=answer.status_code,
                latency_ms=answer.latency_ms,
                outcome=outcome.next.value,
                error=answer.error,
            ),
        )
        if outcome.next is Next.RETRY:
            assert outcome.delay_ms is not None
            delay = timedelta(milliseconds=outcome.delay_ms)
            delivery_rows.schedule_retry(session, delivery.id, owner, delay, answer.error or "")
            return
        status = DeliveryStatus.DELIVERED if answer.ok else DeliveryStatus.FAILED
        error = answer.error
        gone = answer.status_code == GONE and delivery.from_default
        if gone and client_rows.disable_default_callback(session, delivery.client_id, delivery.url):
            error = f"{error}: the endpoint is gone; the client's default endpoint is disabled"
        delivery_rows.finish(session, delivery.id, owner, status, last_error=error)
