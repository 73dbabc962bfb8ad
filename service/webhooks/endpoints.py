"""What a client sees and sets of its webhooks: a job's (or a subscription's) deliveries,
redelivery, and the default endpoint used by jobs and subscriptions that name none."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from service.db import clients as client_rows
from service.db import deliveries as delivery_rows
from service.db import jobs as job_rows
from service.domain.states import DeliveryStatus, Status, is_terminal
from service.domain.urls import UrlRejected, normalize_url, refuse_non_public_literal
from service.errors import Conflict, InvalidInput, NotFound
from service.webhooks.outbox import announce

if TYPE_CHECKING:
    import uuid

    from service.db.models import Client, WebhookAttempt, WebhookDelivery
    from service.domain.states import DeliverySubject
    from service.runtime import Runtime

log = structlog.get_logger(__name__)


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


def deliveries(rt: Runtime, client: Client, job_id: uuid.UUID) -> list[DeliveryView]:
    """The job's deliveries, newest first, each with its attempts."""
    with rt.db.session() as session:
        if job_rows.get_for_client(session, job_id, client.id) is None:
            raise NotFound("no such job")
        found = delivery_rows.with_attempts(session, delivery_rows.for_job(session, job_id))
    return [DeliveryView(d, attempts) for d, attempts in found]


def recent_deliveries(rt: Runtime, client: Client, limit: int = 20) -> list[DeliveryView]:
    """The client's newest deliveries across its jobs, each with its attempts."""
    with rt.db.session() as session:
        recent = delivery_rows.recent_for_client(session, client.id, limit)
        found = delivery_rows.with_attempts(session, recent)
    return [DeliveryView(d, attempts) for d, attempts in found]


def subject_deliveries(
    rt: Runtime, client: Client, kind: DeliverySubject, subject_id: uuid.UUID
) -> list[DeliveryView]:
    """The client's latest deliveries about a subscription (or site), newest first, each
    with its attempts. The caller has checked that the subject is the client's."""
    with rt.db.session() as session:
        found = delivery_rows.for_subject(session, client.id, kind, subject_id)
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
