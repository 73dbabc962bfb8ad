"""``subscriptions_due`` (every minute) rings for the checks of due subscriptions;
``check_subscription(id)`` runs one check.

Both run on the ``<prefix>.subscriptions`` queue, so checks never wait behind downloads
and never delay the sweeps. A check whose listing fails writes that on the subscription
and is not retried: the next interval is its retry. Only an error outside the listing
(the database unreachable) is retried, a few times.
"""

from __future__ import annotations

import dramatiq
import structlog
from periodiq import cron

from actors import runtime, settings
from actors.options import parse_job_id
from service.dispatch import Queue, route
from service.observe import worker_metrics
from service.subscriptions.check import run_check
from service.subscriptions.schedule import tick

log = structlog.get_logger(__name__)

_QUEUE = route(Queue.SUBSCRIPTIONS, settings).queue_name


@dramatiq.actor(
    actor_name="subscriptions_due",
    queue_name=_QUEUE,
    periodic=cron("* * * * *"),
    max_retries=0,
    min_backoff=1_000,
    max_backoff=1_000,
    time_limit=50_000,
)
def subscriptions_due() -> None:
    tick(runtime())


@dramatiq.actor(
    actor_name=route(Queue.SUBSCRIPTIONS, settings).actor_name,
    queue_name=_QUEUE,
    max_retries=3,
    min_backoff=settings.min_backoff_ms,
    max_backoff=settings.max_backoff_ms,
    time_limit=settings.probe_time_limit_s * 1000,
)
def check_subscription(subscription_id: str) -> None:
    parsed = parse_job_id(subscription_id)
    if parsed is None:
        log.error("malformed message dropped", subscription_id=subscription_id)
        return
    outcome = run_check(runtime(), parsed)
    if outcome is not None:
        worker_metrics.subscription_checked(ok=outcome.ok, new=outcome.new, lag_s=outcome.lag_s)
