"""``probe(job_id)``: what is behind the URL? One item, or a playlist to expand."""

from __future__ import annotations

import dramatiq
import structlog

from actors import runtime, settings
from actors.options import job_actor_options, parse_job_id, throttled_waits_longer
from service.dispatch import Queue
from service.work.probe import run_probe

log = structlog.get_logger(__name__)


@dramatiq.actor(**job_actor_options(settings, Queue.PROBE, settings.probe_time_limit_s))
def probe(job_id: str) -> None:
    parsed = parse_job_id(job_id)
    if parsed is None:
        log.error("malformed message dropped", job_id=job_id)
        return
    with throttled_waits_longer(settings):
        run_probe(runtime(), parsed)
