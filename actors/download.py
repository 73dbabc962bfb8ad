"""``download(job_id)``: fetch, post-process and store one item."""

from __future__ import annotations

import dramatiq
import structlog
from dramatiq.middleware import Shutdown

from actors import runtime, settings
from actors.options import job_actor_options, parse_job_id, throttled_waits_longer
from service.dispatch import Queue
from service.work.download import run_download

log = structlog.get_logger(__name__)


@dramatiq.actor(
    **job_actor_options(settings, Queue.DOWNLOAD, settings.download_time_limit_s),
    # On SIGTERM, interrupt the download and hand the job back instead of
    # holding the shutdown for up to an hour.
    notify_shutdown=True,
)
def download(job_id: str) -> None:
    parsed = parse_job_id(job_id)
    if parsed is None:
        log.error("malformed message dropped", job_id=job_id)
        return
    with throttled_waits_longer(settings):
        run_download(runtime(), parsed, hand_back_on=(Shutdown,))
