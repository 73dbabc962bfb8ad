"""``sweeps``: every minute, repair from the rows what the broker or a dead worker lost.

On its own queue, so long downloads never delay it; run exactly one
``periodiq actors`` scheduler (the sweeps are idempotent all the same).
"""

from __future__ import annotations

import dramatiq
from periodiq import cron

from actors import runtime, settings
from service.dispatch import Queue, route
from service.fleet import sweeps as sweep_use_cases


@dramatiq.actor(
    actor_name=route(Queue.SWEEPS, settings).actor_name,
    queue_name=route(Queue.SWEEPS, settings).queue_name,
    periodic=cron("* * * * *"),
    max_retries=0,
    min_backoff=1_000,
    max_backoff=1_000,
    time_limit=50_000,
)
def sweeps() -> None:
    sweep_use_cases.run_all(runtime())
