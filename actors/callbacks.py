"""``deliver_callback(delivery_id)``: one signed webhook POST of a job's terminal event.

On its own queue, so a slow receiver never delays downloads. The use case decides
what follows an attempt; a retry is Dramatiq's ``Retry`` with the delay the use
case chose and wrote on the row (``next_attempt_at``). ``max_retries`` leaves room
for every retry the row allows plus one crash; the row's attempt count, not
Dramatiq's, is what ends a delivery.
"""

from __future__ import annotations

import dramatiq
import structlog

from actors import runtime, settings
from actors.options import parse_job_id
from service.dispatch import Queue, route
from service.webhooks.deliver import Next, deliver, delivery_lease

log = structlog.get_logger(__name__)


@dramatiq.actor(
    actor_name=route(Queue.CALLBACKS, settings).actor_name,
    queue_name=route(Queue.CALLBACKS, settings).queue_name,
    max_retries=settings.webhook_max_attempts,
    min_backoff=settings.webhook_min_backoff_ms,
    max_backoff=settings.webhook_max_backoff_ms,
    time_limit=int(delivery_lease(settings).total_seconds() * 1000),
)
def deliver_callback(delivery_id: str) -> None:
    parsed = parse_job_id(delivery_id)
    if parsed is None:
        log.error("malformed message dropped", delivery_id=delivery_id)
        return
    structlog.contextvars.bind_contextvars(delivery_id=str(parsed))
    outcome = deliver(runtime(), parsed)
    if outcome.next is Next.RETRY:
        raise dramatiq.Retry("webhook attempt failed", delay=outcome.delay_ms)
