"""``subscriptions_due`` (every minute) makes the check jobs of due subscriptions;
``check_subscription(job_id)`` runs one check job.

Both run on the ``<prefix>.subscriptions`` queue, so checks never wait behind downloads
and never delay the sweeps. A check is a job: its actor has the job actors' retries,
backoff and time limit, and a permanent failure (not a feed, refused) is not retried.
"""

from __future__ import annotations

import dramatiq
import structlog
from periodiq import cron

from actors import runtime, settings
from actors.options import job_actor_options, parse_job_id, throttled_waits_longer
from service.dispatch import Queue, route
from service.observe import worker_metrics
from service.subscriptions.check import Outcome, run_check
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


def _observe(outcome: Outcome) -> None:
    worker_metrics.subscription_checked(ok=outcome.ok, new=outcome.new, lag_s=outcome.lag_s)


@dramatiq.actor(**job_actor_options(settings, Queue.SUBSCRIPTIONS, settings.probe_time_limit_s))
def check_subscription(job_id: str) -> None:
    parsed = parse_job_id(job_id)
    if parsed is None:
        log.error("malformed message dropped", job_id=job_id)
        return
    with throttled_waits_longer(settings):
        run_check(runtime(), parsed, _observe)
