"""Webhook use cases: announce, deliver, list, redeliver; the client's default endpoint.

The truth is the ``webhook_deliveries`` row, written by a trigger in the same
transaction that ends a job (see migration 0004), or by :func:`record_event` in the
transaction that records what a subscription's check found (migration 0016: a
delivery's subject is a job, a subscription, or a site). Everything here follows from it:

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

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from service.db import clients as client_rows
from service.db import control as control_rows
from service.db import deliveries as delivery_rows
from service.db.models import WebhookDelivery
from service.dispatch import Queue
from service.domain import BATCH
from service.webhooks.signing import subject_body

if TYPE_CHECKING:
    import uuid
    from collections.abc import Callable

    from service.db import Session
    from service.domain.states import DeliverySubject
    from service.runtime import Runtime


log = structlog.get_logger(__name__)


def announce(rt: Runtime, *job_ids: uuid.UUID | None) -> int:
    """Publish the unsent deliveries of these jobs (after the commit that ended them).

    Never raises: a failed publish leaves ``published_at`` empty, and the sweep sends it.
    """
    wanted = [j for j in job_ids if j is not None]
    return _announce(rt, wanted, delivery_rows.unpublished_for_jobs, "job_ids")


def announce_deliveries(rt: Runtime, delivery_ids: list[uuid.UUID]) -> int:
    """Publish these deliveries (any subject) after the commit that made them; never raises."""
    return _announce(rt, delivery_ids, delivery_rows.unpublished, "delivery_ids")


def record_event(
    session: Session,
    *,
    client_id: uuid.UUID,
    kind: DeliverySubject,
    subject_id: uuid.UUID,
    event: str,
    data: dict[str, Any],
    own_url: str | None,
) -> WebhookDelivery | None:
    """Put an event about a subscription (or a site) in the outbox, in the caller's
    transaction: to ``own_url``, else the client's enabled default endpoint; None when
    there is neither. The body is fixed now; :func:`announce_deliveries` sends it after
    the commit, and the stale sweep if that publish is lost."""
    url, from_default = own_url, False
    if url is None:
        client = client_rows.get(session, client_id)
        if client is not None and client.default_callback_disabled_at is None:
            url, from_default = client.default_callback_url, True
    if url is None:
        return None
    delivery = WebhookDelivery(
        client_id=client_id,
        subject_kind=kind.value,
        subject_id=subject_id,
        event=event,
        url=url,
        from_default=from_default,
        created_at=datetime.now(UTC),
    )
    delivery.body = subject_body(delivery, data)
    return delivery_rows.create_event(session, delivery)


def _announce(
    rt: Runtime,
    wanted: list[uuid.UUID],
    find: Callable[[Session, list[uuid.UUID]], list[WebhookDelivery]],
    what: str,
) -> int:
    if not wanted:
        return 0
    try:
        with rt.db.session() as session:
            if _paused(session):
                return 0  # sent when the callbacks queue is resumed
            pending = find(session, wanted)
            sent = _publish(rt, pending)
            delivery_rows.mark_published(session, sent)
    except Exception as exc:
        log.warning(
            "could not announce deliveries", **{what: [str(w) for w in wanted]}, error=repr(exc)
        )
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


def _paused(session: Session) -> bool:
    """Whether an admin paused the callbacks queue (read shared: a resume waits for us)."""
    return control_rows.queue_state(session, Queue.CALLBACKS).paused_at is not None


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
