"""Webhook use cases: announce, deliver, list, redeliver; the client's default endpoint.

The truth is the ``webhook_deliveries`` row, written by a trigger in the same
transaction that ends a job (see migration 0004). Everything here follows from it:

* :func:`announce` publishes ``deliver_callback(delivery_id)`` after that commit;
  :func:`republish_stale` (a sweep) publishes what was never sent or was lost;
* :func:`deliver` claims the row for one attempt, POSTs the signed event, records
  the attempt, and says what happens next (like a worker's result in Oban):
  delivered, retry in N ms, failed, or dropped (the row was not claimable: a
  duplicate, a late message, a delivery already done).

A delivery is never retried when the egress policy refused its address or the
receiver answered 410 Gone (which also disables the client's default endpoint
when that is where it went).
"""

from __future__ import annotations

import random
import secrets
import time
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import structlog

from service import webhook_http, webhooks
from service.clients import signing_secrets
from service.db import artifacts as artifact_rows
from service.db import clients as client_rows
from service.db import control as control_rows
from service.db import deliveries as delivery_rows
from service.db import jobs as job_rows
from service.db.engine import wait_out_outage
from service.db.models import WebhookAttempt
from service.domain.states import DeliveryStatus, Status, is_terminal
from service.domain.urls import UrlRejected, normalize_url, refuse_non_public_literal
from service.errors import Conflict, InvalidInput, NotFound
from service.queue import CALLBACKS

if TYPE_CHECKING:
    import uuid

    from service.db.models import Client, WebhookDelivery
    from service.runtime import Runtime
    from service.settings import Settings

log = structlog.get_logger(__name__)

BATCH = 500
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


@dataclass(frozen=True)
class DeliveryView:
    """A delivery and its HTTP attempts, as the job's owner sees them."""

    delivery: WebhookDelivery
    attempts: list[WebhookAttempt] = field(default_factory=list)


def check_url(rt: Runtime, url: str) -> str:
    """The canonical form of an acceptable callback URL, or :class:`InvalidInput`.

    The same up-front rules as a source URL: http(s), no credentials, no non-public
    IP literal in any spelling. Names are judged when the worker connects.
    """
    try:
        clean = normalize_url(url)
        refuse_non_public_literal(clean, rt.settings.egress_policy)
    except UrlRejected as exc:
        raise InvalidInput(f"callback_url: {exc}") from exc
    return clean


def delivery_lease(settings: Settings) -> timedelta:
    """How long one attempt may hold a delivery: connect, read and drain, with margin."""
    return timedelta(seconds=settings.webhook_timeout_s * 3 + 10)


def backoff(settings: Settings, failed_attempts: int) -> timedelta:
    """Exponential from ``HAUL_WEBHOOK_MIN_BACKOFF_MS``, jittered up to half again, capped."""
    base = settings.webhook_min_backoff_ms * 2 ** max(0, min(failed_attempts - 1, 32))
    jittered = base * random.uniform(1.0, 1.5)  # noqa: S311  (spreading load, not a secret)
    return timedelta(milliseconds=min(jittered, settings.webhook_max_backoff_ms))


# --- the doorbell -------------------------------------------------------------------------------


def announce(rt: Runtime, *job_ids: uuid.UUID | None) -> int:
    """Publish the unsent deliveries of these jobs (after the commit that ended them).

    Never raises: a failed publish leaves ``published_at`` empty, and the sweep sends it.
    """
    wanted = [j for j in job_ids if j is not None]
    if not wanted:
        return 0
    try:
        with rt.db.session() as session:
            if _paused(session):
                return 0  # sent when the callbacks queue is resumed
            pending = delivery_rows.unpublished_for_jobs(session, wanted)
            sent = _publish(rt, pending)
            delivery_rows.mark_published(session, sent)
    except Exception as exc:
        shown = [str(j) for j in wanted]
        log.warning("could not announce deliveries", job_ids=shown, error=repr(exc))
        return 0
    return len(sent)


def republish_stale(rt: Runtime) -> int:
    """The sweep: publish pending deliveries never sent, or long overdue (message lost,
    worker died mid-attempt). A duplicate is harmless: the claim lets one through."""
    older_than = timedelta(seconds=rt.settings.republish_after_s)
    with rt.db.session() as session:
        if _paused(session):
            return 0
        stale = delivery_rows.stale(session, older_than, BATCH)
        sent = _publish(rt, stale)
        delivery_rows.mark_published(session, sent)
    return len(sent)


def publish_unsent(rt: Runtime) -> int:
    """After the callbacks queue is resumed: send every pending delivery without a message."""
    older_than = timedelta(seconds=rt.settings.republish_after_s)
    total = 0
    while True:
        with rt.db.session() as session:
            if _paused(session):
                return total
            unsent = delivery_rows.stale(session, older_than, BATCH, settle=timedelta(0))
            sent = _publish(rt, unsent)
            delivery_rows.mark_published(session, sent)
        total += len(sent)
        if len(sent) < BATCH:
            return total


def _paused(session: Any) -> bool:
    """Whether an admin paused the callbacks queue (read shared: a resume waits for us)."""
    return control_rows.queue_state(session, CALLBACKS).paused_at is not None


def _publish(rt: Runtime, deliveries: list[WebhookDelivery]) -> list[uuid.UUID]:
    sent: list[uuid.UUID] = []
    for delivery in deliveries:
        try:
            rt.publish_callback(delivery.id)
        except Exception as exc:
            log.warning("publish failed", delivery_id=str(delivery.id), error=repr(exc))
            break  # the broker is away: the rest waits for the sweep as well
        sent.append(delivery.id)
    return sent


# --- one attempt --------------------------------------------------------------------------------


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
        job_id=str(delivery.job_id),
        client_id=str(delivery.client_id),
        attempt=delivery.attempts,
    )
    answer = webhook_http.post(
        delivery.url,
        claimed.body,
        webhooks.headers(str(delivery.id), int(time.time()), claimed.body, claimed.signing),
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
        if body is None:
            artifact = artifact_rows.for_job(session, delivery.job_id)
            children = job_rows.children(session, [delivery.job_id]).get(delivery.job_id)
            body = webhooks.event_body(delivery, artifact, children)
            delivery_rows.set_body(session, delivery.id, owner, body)
    signing = signing_secrets(client, settings.webhook_secret_grace_s) if client else []
    return _Claimed(delivery, body, signing)


def _judge(settings: Settings, delivery: WebhookDelivery, answer: webhook_http.Answer) -> Outcome:
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
    answer: webhook_http.Answer,
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


# --- what the job's owner sees and does ---------------------------------------------------------


def deliveries(rt: Runtime, client: Client, job_id: uuid.UUID) -> list[DeliveryView]:
    """The job's deliveries, newest first, each with its attempts."""
    with rt.db.session() as session:
        if job_rows.get_for_client(session, job_id, client.id) is None:
            raise NotFound("no such job")
        found = delivery_rows.for_job(session, job_id)
        attempts = delivery_rows.attempts_of(session, [d.id for d in found])
    return [DeliveryView(d, attempts.get(d.id, [])) for d in found]


def redeliver(rt: Runtime, client: Client, job_id: uuid.UUID) -> DeliveryView:
    """Send the ended job's event again, to its callback URL or the client's default now.

    The latest delivery of the job's current state is sent again under the same
    ``webhook-id`` (receivers may have seen it); a job that had no callback when it
    ended gets a first delivery.
    """
    limit = rt.settings.webhook_max_attempts
    with rt.db.session() as session:
        job = job_rows.get_for_client(session, job_id, client.id)
        if job is None:
            raise NotFound("no such job")
        if not is_terminal(Status(job.status)):
            raise Conflict(f"the job has not ended ({job.status}); its event is sent when it does")
        owner = client_rows.get(session, client.id)
        url, from_default = _target(job.callback_url, owner)
        if url is None:
            raise Conflict("no callback URL: the job has none and the client's default is unset")
        latest = next(iter(delivery_rows.for_job(session, job_id)), None)
        if latest is not None and latest.status == DeliveryStatus.PENDING.value:
            raise Conflict("a delivery of this job is under way; see its deliveries")
        if latest is not None and latest.event == f"job.{job.status}":
            moved = delivery_rows.rearm(
                session, latest.id, url=url, from_default=from_default, limit=limit
            )
        else:
            moved = delivery_rows.create_for_job(
                session, job_id, url=url, from_default=from_default
            )
        if moved is None:
            raise Conflict("the job or its delivery changed meanwhile; read it again")
        delivery_id = moved.id
    announce(rt, job_id)
    with rt.db.session() as session:
        fresh = delivery_rows.get(session, delivery_id)
        attempts = delivery_rows.attempts_of(session, [delivery_id]).get(delivery_id, [])
    if fresh is None:
        raise NotFound("no such job")
    log.info("redelivery requested", job_id=str(job_id), delivery_id=str(delivery_id))
    return DeliveryView(fresh, attempts)


def _target(job_url: str | None, client: Client | None) -> tuple[str | None, bool]:
    """Where a job's event goes: its own URL, else the client's enabled default."""
    if job_url:
        return job_url, False
    enabled = client is not None and client.default_callback_disabled_at is None
    if enabled and client is not None and client.default_callback_url:
        return client.default_callback_url, True
    return None, False


def default_endpoint(rt: Runtime, client: Client) -> Client:
    """The client as stored now (its default endpoint and whether it was disabled)."""
    with rt.db.session() as session:
        found = client_rows.get(session, client.id)
    if found is None:
        raise NotFound("no such client")
    return found


def set_default_endpoint(rt: Runtime, client: Client, url: str | None) -> Client:
    """Set, replace (re-enabling after a 410) or clear the client's default endpoint."""
    clean = check_url(rt, url) if url is not None else None
    with rt.db.session() as session:
        updated = client_rows.set_default_callback(session, client.id, clean)
    if updated is None:
        raise NotFound("no such client")
    log.info("default callback set", client_id=str(client.id), cleared=clean is None)
    return updated
