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

import asyncio
import contextlib
import json
import queue
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import dramatiq
import pika
import structlog
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from pika.adapters.asyncio_connection import AsyncioConnection

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
    broker.enqueue(message_for(settings, queue, job_id, priority=priority))


def message_for(
    settings: Settings, queue: Queue, job_id: UUID, *, priority: int = 0
) -> dramatiq.Message[None]:
    """The message that rings ``<actor of queue>(job_id)``."""
    where = route(queue, settings)
    return dramatiq.Message(
        queue_name=where.queue_name,
        actor_name=where.actor_name,
        args=(str(job_id),),
        kwargs={},
        options={"broker_priority": max(0, min(priority, MAX_PRIORITY))},
    )


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


async def publish_new_async(rt: Runtime, job: Job) -> Job:
    """:func:`publish_new` from an ``async`` handler: the confirm is awaited on its loop;
    a refused publish is written to the row (from a thread) as there."""
    try:
        await rt.publish_async(Step(job.step), job.id, priority=job.priority)
    except Exception as exc:
        return await asyncio.to_thread(_publish_failed, rt, job, exc)
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


class PublishRefused(Exception):
    """RabbitMQ did not take a message: it nacked it, returned it (no such queue), or the
    connection or channel closed before it confirmed."""


class AsyncPublisher:
    """Confirmed publishes from the event loop of an ``async`` handler, one AMQP channel
    in confirm mode on pika's asyncio connection: the loop goes on serving requests while
    RabbitMQ confirms, and no thread of the pool waits for it.

    The message is the one :func:`publish` sends through Dramatiq's broker (same body,
    properties, ``mandatory`` flag, the broker's enqueue hooks). Queues are declared by
    that broker: the first message to a queue goes through it (in a thread), as does one
    that RabbitMQ returned as unroutable (its queue was deleted), which declares the
    queue again. A connection belongs to the loop it was opened on; a call from another
    loop (a test client's) opens its own.
    """

    #: How long a publish waits for RabbitMQ's confirm before it counts as failed (a
    #: message confirmed later is a second doorbell at most, which the claim absorbs).
    CONFIRM_TIMEOUT_S = 10.0

    def __init__(self, broker: dramatiq.Broker, url: str) -> None:
        self._broker = broker
        self._url = url
        self._loop: asyncio.AbstractEventLoop | None = None
        self._opening: asyncio.Future[Any] | None = None
        self._channel: Any = None
        self._connection: Any = None
        self._tag = 0
        self._waiting: dict[int, tuple[asyncio.Future[None], str]] = {}
        self._returned: set[str] = set()
        #: Queues this process's broker has declared (its first message went through it).
        self._declared: set[str] = set()
        self._gone: asyncio.Future[None] | None = None

    async def publish(self, message: dramatiq.Message[Any]) -> None:
        """Send ``message``; returns once RabbitMQ confirmed it, raises otherwise."""
        if message.queue_name not in self._declared:
            await asyncio.to_thread(self._broker.enqueue, message)
            self._declared.add(message.queue_name)
            return
        channel = await self._open()
        self._broker.emit_before("enqueue", message, None)
        confirmed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        channel.basic_publish(
            exchange="",
            routing_key=message.queue_name,
            body=message.encode(),
            properties=pika.BasicProperties(
                delivery_mode=2, priority=message.options.get("broker_priority")
            ),
            mandatory=True,
        )
        self._tag += 1
        self._waiting[self._tag] = (confirmed, message.message_id)
        try:
            await asyncio.wait_for(confirmed, self.CONFIRM_TIMEOUT_S)
        except PublishRefused as exc:
            if "returned" not in str(exc):
                raise
            # Its queue is gone: the broker declares it again and sends the message.
            self._declared.discard(message.queue_name)
            await asyncio.to_thread(self._broker.enqueue, message)
            self._declared.add(message.queue_name)
            return
        self._broker.emit_after("enqueue", message, None)

    async def close(self) -> None:
        """Close the connection (call on its loop) and wait until it is; pending
        publishes fail."""
        connection = self._connection
        if connection is not None and self._loop is asyncio.get_running_loop():
            if connection.is_open:
                self._gone = asyncio.get_running_loop().create_future()
                connection.close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._gone, 5.0)
        else:
            self._abandon()
        self._forget()
        self._fail_all("closed")

    async def _open(self) -> Any:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._abandon()
            self._forget()
            self._loop = loop
        if self._channel is not None and self._channel.is_open:
            return self._channel
        if self._opening is None:
            self._opening = loop.create_future()
            self._connect(loop, self._opening)
        opening = self._opening
        try:
            return await asyncio.wait_for(asyncio.shield(opening), self.CONFIRM_TIMEOUT_S)
        finally:
            if opening.done():
                self._opening = None

    def _connect(self, loop: asyncio.AbstractEventLoop, opening: asyncio.Future[Any]) -> None:
        def failed(_conn: Any, error: BaseException) -> None:
            if not opening.done():
                opening.set_exception(PublishRefused(f"cannot connect: {error!r}"))

        def channel_open(channel: Any) -> None:
            channel.add_on_close_callback(self._closed)
            channel.add_on_return_callback(self._on_return)
            channel.confirm_delivery(self._on_confirm, lambda _frame: ready(channel))

        def ready(channel: Any) -> None:
            self._channel, self._tag = channel, 0
            if not opening.done():
                opening.set_result(channel)

        def open_channel(conn: Any) -> None:
            conn.channel(on_open_callback=channel_open)

        def lost(_conn: Any, error: BaseException) -> None:
            failed(_conn, error)
            self._closed(None, error)
            if self._gone is not None and not self._gone.done():
                self._gone.set_result(None)

        self._connection = AsyncioConnection(
            pika.URLParameters(self._url),
            on_open_callback=open_channel,
            on_open_error_callback=failed,
            on_close_callback=lost,
            custom_ioloop=loop,
        )

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        acked = isinstance(method, pika.spec.Basic.Ack)
        tags = (
            [t for t in self._waiting if t <= method.delivery_tag]
            if method.multiple
            else [method.delivery_tag]
        )
        for tag in tags:
            future, message_id = self._waiting.pop(tag, (None, ""))
            if future is None or future.done():
                continue
            if not acked:
                future.set_exception(PublishRefused("nacked by RabbitMQ"))
            elif message_id in self._returned:
                self._returned.discard(message_id)
                future.set_exception(PublishRefused("returned by RabbitMQ: unroutable"))
            else:
                future.set_result(None)

    def _on_return(self, _channel: Any, _method: Any, _properties: Any, body: bytes) -> None:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            self._returned.add(str(json.loads(body)["message_id"]))

    def _closed(self, _channel: Any, reason: BaseException) -> None:
        self._channel = None
        if self._connection is not None and self._connection.is_open:
            self._connection.close()
        self._connection = None
        self._fail_all(f"connection closed: {reason!r}")

    def _fail_all(self, why: str) -> None:
        waiting, self._waiting = self._waiting, {}
        self._returned.clear()
        for future, _ in waiting.values():
            if not future.done():
                future.set_exception(PublishRefused(why))

    def _abandon(self) -> None:
        """Drop the socket of a connection whose loop is not this one (it may be gone)."""
        transport = getattr(self._connection, "_transport", None)
        sock = getattr(transport, "_sock", None)  # pika's stream transport's socket
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def _forget(self) -> None:
        """Forget the connection (another loop's, or one closed)."""
        self._connection = self._channel = self._opening = None
        self._waiting, self._tag = {}, 0
        self._returned.clear()
