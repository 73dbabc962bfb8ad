"""Queue and actor names, the broker factory and publishing by actor name.

The API publishes through here without importing the actors: a message names an
actor and carries a job id, nothing a worker must trust.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker

if TYPE_CHECKING:
    from uuid import UUID

    from service.settings import Settings

#: Highest message priority; every producer and consumer must declare queues alike.
MAX_PRIORITY = 9

PROBE = "probe"
DOWNLOAD = "download"
SWEEPS = "sweeps"
#: Webhook deliveries: ``deliver_callback(delivery_id)`` on ``<prefix>.callbacks``.
CALLBACKS = "callbacks"
CALLBACKS_ACTOR = "deliver_callback"
#: Every step, so every queue: each with its delay (``.DQ``) and dead-letter (``.XQ``) queue.
STEPS = (PROBE, DOWNLOAD, SWEEPS, CALLBACKS)

#: pika waits 15 s for a silent broker and forever for a blocked one by default;
#: a request that publishes should fail fast instead (the row then says so).
CONNECTION_DEFAULTS = {"stack_timeout": "5", "blocked_connection_timeout": "30"}


@dataclass(frozen=True)
class Route:
    """Where a step's messages go: the actor that handles them and its queue."""

    actor_name: str
    queue_name: str


def route(step: str, settings: Settings) -> Route:
    """The actor and queue for a step (``probe``, ``download``, ``sweeps``, ``callbacks``)."""
    actor_name = CALLBACKS_ACTOR if step == CALLBACKS else step
    return Route(actor_name=actor_name, queue_name=f"{settings.queue_prefix}.{step}")


def queue_names(settings: Settings) -> list[str]:
    """Every queue of the deployment, in a stable order: ``haul.probe``, ``haul.probe.DQ``, …"""
    return [
        f"{route(step, settings).queue_name}{suffix}"
        for step in STEPS
        for suffix in ("", ".DQ", ".XQ")
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
    broker: dramatiq.Broker, settings: Settings, step: str, job_id: UUID, *, priority: int = 0
) -> None:
    """Send ``step(job_id)``; raises if RabbitMQ does not confirm the message."""
    where = route(step, settings)
    message: dramatiq.Message[None] = dramatiq.Message(
        queue_name=where.queue_name,
        actor_name=where.actor_name,
        args=(str(job_id),),
        kwargs={},
        options={"broker_priority": max(0, min(priority, MAX_PRIORITY))},
    )
    broker.enqueue(message)
