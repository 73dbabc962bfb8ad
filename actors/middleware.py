"""Dramatiq middleware that keeps job rows truthful about retries and dead letters.

The use cases write ``retrying`` when an attempt fails; this middleware adds what
only the broker side knows: when the retry is due, and that retries ran out.
"""

from __future__ import annotations

import sys
import threading
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import dramatiq
import structlog

from service.dispatch import SUBSCRIPTIONS_ACTOR, Queue
from service.errors import ServiceUnavailable
from service.observe.doctor import media_tools_refusal
from service.work.host import HostReporter
from service.work.outcomes import dead_lettered, retry_scheduled

if TYPE_CHECKING:
    from collections.abc import Callable

    from service.runtime import Runtime

log = structlog.get_logger(__name__)

#: The actors whose message carries a job id: the job queues' (named after their queues)
#: and the subscription check's (a check is a job of kind ``check``).
_JOB_ACTORS = frozenset({Queue.PROBE.value, Queue.DOWNLOAD.value, SUBSCRIPTIONS_ACTOR})


def _job_id(message: Any) -> uuid.UUID | None:
    if message.actor_name not in _JOB_ACTORS or not message.args:
        return None
    try:
        return uuid.UUID(str(message.args[0]))
    except ValueError:
        return None


class JobRows(dramatiq.Middleware):
    """Writes retry schedules and dead letters back to the job rows."""

    def __init__(self, runtime: Callable[[], Runtime]) -> None:
        self.runtime = runtime

    def before_enqueue(self, broker: Any, message: Any, delay: int | None) -> None:
        """Called before a message is enqueued; a delayed one with retries is a retry."""
        job_id = _job_id(message)
        if job_id is None or not delay or not message.options.get("retries"):
            return
        try:
            retry_scheduled(self.runtime(), job_id, timedelta(milliseconds=delay))
        except ServiceUnavailable:
            # The retry is still sent; the row keeps saying ``retrying`` without a due time.
            log.warning("could not record the retry schedule", job_id=str(job_id))

    def after_nack(self, broker: Any, message: Any) -> None:
        """Called after a message is rejected into its dead-letter queue (.XQ)."""
        job_id = _job_id(message)
        if job_id is None:
            return
        retries = message.options.get("retries", 0)
        try:
            dead_lettered(self.runtime(), job_id, retries)
        except ServiceUnavailable:
            # The row still says retrying or queued: the sweep publishes it again later.
            log.warning("could not record the dead letter", job_id=str(job_id))
            return
        log.warning("dead-lettered", job_id=str(job_id), retries=retries, queue=message.queue_name)


class LogContext(dramatiq.Middleware):
    """Binds job_id, queue and retry count to every log line of one message's work."""

    def before_process_message(self, broker: Any, message: Any) -> None:
        """Called before a message is processed."""
        structlog.contextvars.clear_contextvars()
        job_id = _job_id(message)
        structlog.contextvars.bind_contextvars(
            queue=message.queue_name,
            message_id=message.message_id,
            retries=message.options.get("retries", 0),
            **({"job_id": str(job_id)} if job_id else {}),
        )

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        """Called after a message is processed, successfully or not."""
        structlog.contextvars.clear_contextvars()

    after_skip_message = after_process_message


#: The exit status of a worker process that refuses to start (Dramatiq's "import failed").
REFUSED = 2


class RequireMediaTools(dramatiq.Middleware):
    """A worker without ffmpeg and ffprobe would fail every download it took: it refuses to
    start instead, with one line naming the command that installs them.

    Dramatiq emits ``process_boot`` in its worker processes only, so the scheduler
    (``periodiq actors``), which downloads nothing, starts without them.
    """

    def after_process_boot(self, broker: Any) -> None:
        refusal = media_tools_refusal()
        if refusal is not None:
            log.critical(refusal)
            sys.exit(REFUSED)


class HostReport(dramatiq.Middleware):
    """Each worker process reports its host's yt-dlp (``worker_hosts``) when its threads have
    started, then on a beat until it shuts down (``service/work/host.py``)."""

    def __init__(self, runtime: Callable[[], Runtime]) -> None:
        self.runtime = runtime
        self._reporter: HostReporter | None = None

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        """Called once the worker's threads are running."""
        self._reporter = HostReporter(self.runtime())
        self._reporter.start()

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        """Called when the worker process begins to stop (SIGTERM, or SIGHUP: a reload)."""
        if self._reporter is not None:
            self._reporter.stop()


class StopTaking(dramatiq.Middleware):
    """A worker process that has begun to stop (SIGTERM, or SIGHUP: a reload) runs no new
    message: one a thread still takes (a download it just handed back, bouncing straight
    back) is sent back to its queue for another process, or this one after its restart."""

    def __init__(self) -> None:
        self.stopping = threading.Event()

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        """Called when the worker process begins to stop."""
        self.stopping.set()

    def before_process_message(self, broker: Any, message: Any) -> None:
        """Called before a message is processed."""
        if self.stopping.is_set():
            broker.enqueue(message)
            log.info("message sent back: this worker is stopping", message_id=message.message_id)
            raise dramatiq.middleware.SkipMessage
