"""The engine baseline: Dramatiq and RabbitMQ with a no-op actor (``dramatiq bench.bare_worker``).

The broker is built as haul builds its own (publisher confirms, priority queues,
Dramatiq's default middleware), so the difference to haul's worker is haul's
work per message and nothing else.
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker

#: haul's ``service.dispatch.MAX_PRIORITY`` (a unit test keeps the two equal), written out:
#: importing it would load haul's database layer into a baseline that must carry none of it.
MAX_PRIORITY = 9

QUEUE = os.environ.get("BENCH_QUEUE", "haulbench.bare")

broker = RabbitmqBroker(
    url=os.environ.get("HAUL_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"),
    confirm_delivery=True,
    max_priority=MAX_PRIORITY,
)
dramatiq.set_broker(broker)


@dramatiq.actor(actor_name="noop", queue_name=QUEUE, max_retries=0, time_limit=60_000)
def noop(job_id: str) -> None:
    """Does nothing: what is left is Dramatiq and RabbitMQ themselves."""
