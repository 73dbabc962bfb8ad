"""How many messages wait in each of haul's queues, read from RabbitMQ for operators.

A passive ``queue.declare`` answers with a queue's ready messages and its consumers
over plain AMQP, without the management plugin. Messages a worker has taken and not
yet acknowledged are not in that answer (the management API and ``rabbitmqctl
list_queues messages_unacknowledged`` have them).

Reads share one connection of their own and run in a thread of their own, so a
broker that stops answering costs a caller at most ``timeout`` seconds, and a read
still stuck makes the next ones wait no longer than that either.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pika
import structlog

from service.errors import ServiceUnavailable

if TYPE_CHECKING:
    from collections.abc import Sequence

log = structlog.get_logger(__name__)

_NOT_FOUND = 404


@dataclass(frozen=True)
class Depth:
    """One queue: messages ready for a consumer, and consumers attached."""

    ready: int
    consumers: int


class QueueDepths:
    """Reads the depth of every named queue; ``None`` for a queue nobody has declared yet."""

    def __init__(self, url: str, names: Sequence[str], timeout: float = 2.0) -> None:
        self.url = url
        self.names = list(names)
        self.timeout = timeout
        self._lock = threading.Lock()
        self._connection: pika.BlockingConnection | None = None

    def read(self) -> dict[str, Depth | None]:
        """Each queue's depth; raises :class:`ServiceUnavailable` when RabbitMQ does not answer."""
        deadline = time.monotonic() + self.timeout
        if not self._lock.acquire(timeout=self.timeout):
            raise ServiceUnavailable("queue depths: an earlier read still waits for RabbitMQ")
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                outcome["depths"] = self._read()
            except Exception as exc:
                outcome["error"] = exc
                self._drop()
            finally:
                self._lock.release()

        thread = threading.Thread(target=work, name="queue-depths", daemon=True)
        thread.start()
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            raise ServiceUnavailable(f"queue depths: no answer from RabbitMQ in {self.timeout:g} s")
        if "error" in outcome:
            error = outcome["error"]
            raise ServiceUnavailable(f"queue depths: {type(error).__name__}") from error
        depths: dict[str, Depth | None] = outcome["depths"]
        return depths

    def close(self) -> None:
        """Close the connection, unless a read is stuck on it (it goes with the process then)."""
        if self._lock.acquire(timeout=self.timeout):
            try:
                self._drop()
            finally:
                self._lock.release()

    def _read(self) -> dict[str, Depth | None]:
        if self._connection is None or not self._connection.is_open:
            self._connection = pika.BlockingConnection(pika.URLParameters(self.url))
        depths: dict[str, Depth | None] = {}
        channel = None
        try:
            for name in self.names:
                if channel is None or not channel.is_open:
                    channel = self._connection.channel()
                try:
                    declared = channel.queue_declare(name, passive=True)
                except pika.exceptions.ChannelClosedByBroker as exc:
                    if exc.reply_code != _NOT_FOUND:
                        raise
                    depths[name] = None  # the broker closed this channel; the next gets a new one
                    continue
                depths[name] = Depth(
                    ready=int(declared.method.message_count),
                    consumers=int(declared.method.consumer_count),
                )
        finally:
            if channel is not None and channel.is_open:
                channel.close()
        return depths

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except Exception:
                log.debug("queue depths: closing the connection failed", exc_info=True)
