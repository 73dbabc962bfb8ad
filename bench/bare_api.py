"""The submit path's baseline: a bare Litestar endpoint that only publishes one
Dramatiq message per request (``uvicorn bench.bare_api:app``).

Same server, same settings as haul's API: a synchronous handler run in a thread,
a ``RabbitmqBroker`` with publisher confirms and priority queues, the same JSON
body. What it leaves out is exactly haul's work: authentication, validation, the
row in PostgreSQL and the write that records the publish.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from litestar import Litestar, post

#: haul's ``service.dispatch.MAX_PRIORITY`` (a unit test keeps the two equal), written out:
#: importing it would load haul's database layer into a baseline that must carry none of it.
MAX_PRIORITY = 9

QUEUE = os.environ.get("BENCH_QUEUE", "haulbench.bare")
broker = RabbitmqBroker(
    url=os.environ.get("HAUL_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"),
    confirm_delivery=True,
    max_priority=MAX_PRIORITY,
)


@post("/jobs", status_code=202, sync_to_thread=True)
def submit(data: dict[str, Any]) -> dict[str, str]:
    job_id = str(uuid.uuid4())
    message: dramatiq.Message[None] = dramatiq.Message(
        queue_name=QUEUE,
        actor_name="noop",
        args=(job_id,),
        kwargs={},
        options={"broker_priority": 0},
    )
    broker.enqueue(message)
    return {"id": job_id, "url": str(data.get("url"))}


@post("/health", status_code=200, sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


app = Litestar(route_handlers=[submit, health])
