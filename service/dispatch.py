"""The broker side: queue and actor names, the broker factory, publishing a job's message.

The API publishes through here without importing the actors: a message names an
actor and carries a job id, nothing a worker must trust. :func:`publish_or_record`
is the one way a committed queued job rings the doorbell; when the broker does not
confirm, the row says so and the republish sweep tries again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import dramatiq
import structlog
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from service.db import control as control_rows
from service.db import jobs as job_rows
from service.domain.control import Queue as Queue  # the broker side's name for it
from service.domain.states import Step

if TYPE_CHECKING:
    from collections.abc import Iterable
    from uuid import UUID

    from service.db.models import Job
    from service.runtime import Runtime
    from service.settings import Settings

log = structlog.get_logger(__name__)

#: Highest message priority; every producer and consumer must declare queues alike.
MAX_PRIORITY = 9

#: Webhook deliveries: ``deliver_callback(delivery_id)`` on ``<prefix>.callbacks``; every
#: other queue's actor is named after it.
CALLBACKS_ACTOR = "deliver_callback"
#: Subscription checks: ``check_subscription(subscription_id)`` on ``<prefix>.subscriptions``;
#: the scheduler's tick that finds due ones (``subscriptions_due``) runs there too.
SUBSCRIPTIONS_ACTOR = "check_subscription"

#: pika waits 15 s for a silent broker and forever for a blocked one by default;
#: a request that publishes should fail fast instead (the row then says so).
CONNECTION_DEFAULTS = {"stack_timeout": "5", "blocked_connection_timeout": "30"}


@dataclass(frozen=True)
class Route:
    """Where a step's messages go: the actor that handles them and its queue."""

    actor_name: str
    queue_name: str


#: Queues whose actor is not named after the queue.
_ACTORS = {Queue.CALLBACKS: CALLBACKS_ACTOR, Queue.SUBSCRIPTIONS: SUBSCRIPTIONS_ACTOR}


def route(queue: Queue, settings: Settings) -> Route:
    """The actor and the RabbitMQ queue of one of haul's queues."""
    actor_name = _ACTORS.get(queue, queue.value)
    return Route(actor_name=actor_name, queue_name=f"{settings.queue_prefix}.{queue.value}")


def queue_names(settings: Settings) -> list[str]:
    """Every queue of the deployment, each with its delay (``.DQ``) and dead-letter (``.XQ``)
    queue, in a stable order: ``haul.probe``, ``haul.probe.DQ``, …"""
    return [
        f"{route(queue, settings).queue_name}{suffix}"
        for queue in Queue
        for suffix in ("", ".DQ", ".XQ")
    ]


def consumed_queues(
    settings: Settings, *, only: Iterable[Queue] = (), exclude: Iterable[Queue] = ()
) -> list[str]:
    """The queues a worker process should consume (``dramatiq actors -Q …``), by their
    canonical names: every queue, or ``only`` those, less ``exclude``, in enum order.

    Dramatiq's ``-Q`` whitelist names canonical queues, and each brings its ``.DQ``
    delay queue along, so a retry waits on the queue of the process that will take it.
    """
    chosen, left_out = set(only), set(exclude)
    return [
        route(queue, settings).queue_name
        for queue in Queue
        if (not chosen or queue in chosen) and queue not in left_out
    ]


def build_broker(
    settings: Settings, *, middleware: list[dramatiq.Middleware] | None = None
) -> RabbitmqBroker:
    """A RabbitMQ broker with publisher confirms and priority queues; connects lazily."""
    return RabbitmqBroker(
        url=with_connection_defaults(settings.broker_url),
        confirm_delivery=True,
        max_priority=MAX_PRIORITY,
        middleware=middleware,
    )


def with_connection_defaults(url: str) -> str:
    """Add haul's connection timeouts to an AMQP URL unless it sets its own."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    merged = CONNECTION_DEFAULTS | query
    return urlunsplit(parts._replace(query=urlencode(merged)))


def publish(
    broker: dramatiq.Broker, settings: Settings, queue: Queue, job_id: UUID, *, priority: int = 0
) -> None:
    """Send ``<actor of queue>(job_id)``; raises if RabbitMQ does not confirm the message."""
    where = route(queue, settings)
    message: dramatiq.Message[None] = dramatiq.Message(
        queue_name=where.queue_name,
        actor_name=where.actor_name,
        args=(str(job_id),),
        kwargs={},
        options={"broker_priority": max(0, min(priority, MAX_PRIORITY))},
    )
    broker.enqueue(message)


def publish_or_record(rt: Runtime, job: Job) -> bool:
    """Publish a committed queued job; on failure write why on the row (the sweep retries).

    A job whose queue or client is paused is held in its row instead, and published
    when resumed: nothing waits in the broker during a pause.
    """
    with rt.db.session() as session:
        if control_rows.hold_if_paused(session, job).held is not None:
            return False
    return publish_checked(rt, job)[0]


def publish_stamped(rt: Runtime, job: Job) -> bool:
    """Publish a job whose row was stamped ``published_at`` in the transaction that queued
    it (after its pause check there), saving the write after the publish.

    When the broker refuses, the row loses the stamp and says why, as after any failed
    publish. A worker that dies between that commit and the publish leaves a stamped row
    with no message: the sweep publishes queued rows left unclaimed for
    ``HAUL_REPUBLISH_AFTER_S`` again, so the job is late, not lost.
    """
    try:
        rt.publish(Step(job.step), job.id, priority=job.priority)
    except Exception as exc:
        log.warning("publish failed", job_id=str(job.id), error=repr(exc))
        reason = f"{type(exc).__name__}: {exc}"[:500]
        with rt.db.session() as session:
            job_rows.mark_publish_failed(session, job.id, reason)
        return False
    return True


def publish_checked(rt: Runtime, job: Job) -> tuple[bool, Job]:
    """Publish a job whose pause check was made in the transaction that queued it, and
    record it on the row: whether the doorbell rang, and the row as it is now."""
    try:
        rt.publish(Step(job.step), job.id, priority=job.priority)
    except Exception as exc:
        log.warning("publish failed", job_id=str(job.id), error=repr(exc))
        reason = f"{type(exc).__name__}: {exc}"[:500]
        with rt.db.session() as session:
            return False, job_rows.mark_publish_failed(session, job.id, reason) or job
    with rt.db.session() as session:
        published = job_rows.mark_published(session, [job.id])
    return True, published[0] if published else job
