"""The broker side: queue and actor names, the broker factory, publishing a job's message.

The API publishes through here without importing the actors: a message names an
actor and carries a job id, nothing a worker must trust. :func:`publish_or_record`
is the one way a committed queued job rings the doorbell; when the broker does not
confirm, the row says so and the republish sweep tries again.

A new submission (:func:`publish_new`) is marked published later, in batches written
by :class:`PublishMarks` off the request path; a mark never written leaves
``published_at`` empty, and the republish sweep sends that job's message again (a
second message is harmless: the claim is guarded).
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import dramatiq
import structlog
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from service.db import control as control_rows
from service.db import jobs as job_rows
from service.domain.control import Queue as Queue  # the broker side's name for it
from service.domain.states import Step

if TYPE_CHECKING:
    from collections.abc import Iterable
    from uuid import UUID

    from service.db.engine import Database
    from service.db.models import Job
    from service.runtime import Runtime
    from service.settings import Settings

log = structlog.get_logger(__name__)

#: Highest message priority; every producer and consumer must declare queues alike.
MAX_PRIORITY = 9

#: Webhook deliveries: ``deliver_callback(delivery_id)`` on ``<prefix>.callbacks``; every
#: other queue's actor is named after it.
CALLBACKS_ACTOR = "deliver_callback"
#: Subscription checks: ``check_subscription(job_id)`` on ``<prefix>.subscriptions`` (a check
#: is a job of kind ``check`` whose step is this queue); the scheduler's tick that makes the
#: checks of due subscriptions (``subscriptions_due``) runs there too.
SUBSCRIPTIONS_ACTOR = "check_subscription"

#: pika waits 15 s for a silent broker and forever for a blocked one by default;
#: a request that publishes should fail fast instead (the row then says so).
CONNECTION_DEFAULTS = {"stack_timeout": "5", "blocked_connection_timeout": "30"}


@dataclass(frozen=True)
class Route:
    """Where a step's messages go: the actor that handles them and its queue."""

    actor_name: str
    queue_name: str


#: Queues whose actor is not named after the queue.
_ACTORS = {Queue.CALLBACKS: CALLBACKS_ACTOR, Queue.SUBSCRIPTIONS: SUBSCRIPTIONS_ACTOR}


def route(queue: Queue, settings: Settings) -> Route:
    """The actor and the RabbitMQ queue of one of haul's queues."""
    actor_name = _ACTORS.get(queue, queue.value)
    return Route(actor_name=actor_name, queue_name=f"{settings.queue_prefix}.{queue.value}")


def queue_names(settings: Settings) -> list[str]:
    """Every queue of the deployment, each with its delay (``.DQ``) and dead-letter (``.XQ``)
    queue, in a stable order: ``haul.probe``, ``haul.probe.DQ``, …"""
    return [
        f"{route(queue, settings).queue_name}{suffix}"
        for queue in Queue
        for suffix in ("", ".DQ", ".XQ")
    ]


def consumed_queues(
    settings: Settings, *, only: Iterable[Queue] = (), exclude: Iterable[Queue] = ()
) -> list[str]:
    """The queues a worker process should consume (``dramatiq actors -Q …``), by their
    canonical names: every queue, or ``only`` those, less ``exclude``, in enum order.

    Dramatiq's ``-Q`` whitelist names canonical queues, and each brings its ``.DQ``
    delay queue along, so a retry waits on the queue of the process that will take it.
    """
    chosen, left_out = set(only), set(exclude)
    return [
        route(queue, settings).queue_name
        for queue in Queue
        if (not chosen or queue in chosen) and queue not in left_out
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
    broker: dramatiq.Broker, settings: Settings, queue: Queue, job_id: UUID, *, priority: int = 0
) -> None:
    """Send ``<actor of queue>(job_id)``; raises if RabbitMQ does not confirm the message."""
    where = route(queue, settings)
    message: dramatiq.Message[None] = dramatiq.Message(
        queue_name=where.queue_name,
        actor_name=where.actor_name,
        args=(str(job_id),),
        kwargs={},
        options={"broker_priority": max(0, min(priority, MAX_PRIORITY))},
    )
    broker.enqueue(message)


def publish_or_record(rt: Runtime, job: Job) -> bool:
    """Publish a committed queued job; on failure write why on the row (the sweep retries).

    A job whose queue or client is paused is held in its row instead, and published
    when resumed: nothing waits in the broker during a pause.
    """
    with rt.db.session() as session:
        if control_rows.hold_if_paused(session, job).held is not None:
            return False
    return publish_checked(rt, job)[0]


def publish_stamped(rt: Runtime, job: Job) -> bool:
    """Publish a job whose row was stamped ``published_at`` in the transaction that queued
    it (after its pause check there), saving the write after the publish.

    When the broker refuses, the row loses the stamp and says why, as after any failed
    publish. A worker that dies between that commit and the publish leaves a stamped row
    with no message: the sweep publishes queued rows left unclaimed for
    ``HAUL_REPUBLISH_AFTER_S`` again, so the job is late, not lost.
    """
    try:
        rt.publish(Step(job.step), job.id, priority=job.priority)
    except Exception as exc:
        log.warning("publish failed", job_id=str(job.id), error=repr(exc))
        reason = f"{type(exc).__name__}: {exc}"[:500]
        with rt.db.session() as session:
            job_rows.mark_publish_failed(session, job.id, reason)
        return False
    return True


def publish_checked(rt: Runtime, job: Job) -> tuple[bool, Job]:
    """Publish a job whose pause check was made in the transaction that queued it, and
    record it on the row: whether the doorbell rang, and the row as it is now."""
    try:
        rt.publish(Step(job.step), job.id, priority=job.priority)
    except Exception as exc:
        return False, _publish_failed(rt, job, exc)
    with rt.db.session() as session:
        published = job_rows.mark_published(session, [job.id])
    return True, published[0] if published else job


def publish_new(rt: Runtime, job: Job) -> Job:
    """Publish a job just inserted (its insert made the pause check) and return it as it
    now stands: with the time the broker confirmed, which ``rt.marks`` writes to its row
    shortly after; or, when not confirmed, with the reason, written at once."""
    try:
        rt.publish(Step(job.step), job.id, priority=job.priority)
    except Exception as exc:
        return _publish_failed(rt, job, exc)
    job.published_at = datetime.now(UTC)
    rt.marks.add(job.id, job.published_at)
    return job


def _publish_failed(rt: Runtime, job: Job, exc: Exception) -> Job:
    log.warning("publish failed", job_id=str(job.id), error=repr(exc))
    reason = f"{type(exc).__name__}: {exc}"[:500]
    with rt.db.session() as session:
        return job_rows.mark_publish_failed(session, job.id, reason) or job


class PublishMarks:
    """New jobs whose message the broker confirmed, written as ``published_at`` by a
    thread of this process, many jobs to one UPDATE (``db/jobs.py: mark_confirmed``).

    The request that published never waits for it. What is not written (the process
    died first, the database refused) leaves ``published_at`` empty, which is what the
    republish sweep looks for. The thread starts with the first mark; :meth:`close`
    writes what is pending and stops it (a later mark starts it again).
    """

    #: The most jobs one UPDATE marks.
    MOST = 1000

    def __init__(self, db: Database, *, linger_s: float = 0.05) -> None:
        self._db = db
        #: How long the thread lets marks gather after the first one of a batch.
        self._linger_s = linger_s
        self._pending: queue.SimpleQueue[tuple[UUID, datetime] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closing = threading.Event()

    def add(self, job_id: UUID, confirmed_at: datetime) -> None:
        """Queue a mark; never blocks, never raises for the database."""
        self._pending.put((job_id, confirmed_at))
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="publish-marks", daemon=True
                    )
                    self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Write the pending marks and stop the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            self._pending.put(None)
            self._closing.set()
            thread.join(timeout)
            self._closing.clear()

    def _run(self) -> None:
        while True:
            first = self._pending.get()
            if first is None:
                return
            self._closing.wait(self._linger_s)
            batch, stop = [first], False
            while len(batch) < self.MOST and not stop:
                try:
                    item = self._pending.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                else:
                    batch.append(item)
            self._write(batch)
            if stop:
                return

    def _write(self, batch: list[tuple[UUID, datetime]]) -> None:
        try:
            job_rows.mark_confirmed(self._db.direct, batch)
        except Exception:
            log.warning(
                "could not mark published jobs; the republish sweep sends them again",
                jobs=len(batch),
                exc_info=True,
            )
