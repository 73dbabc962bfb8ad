"""Queue depths are information for operators: a broker that stops answering must cost a
health check a bounded time, never hang it."""

from __future__ import annotations

import socket

import pytest

from service.errors import ServiceUnavailable
from service.observe.queue_depths import QueueDepths


def test_a_broker_that_never_answers_costs_each_reader_at_most_the_timeout() -> None:
    # Given a "broker" that takes connections and never says a word
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        depths = QueueDepths(
            f"amqp://guest:guest@127.0.0.1:{port}/%2F?stack_timeout=30", ["haul.probe"], timeout=0.2
        )
        # When the depths are read, then read again while the first read still waits
        with pytest.raises(ServiceUnavailable, match=r"no answer from RabbitMQ in 0\.2 s"):
            depths.read()
        with pytest.raises(ServiceUnavailable, match="an earlier read still waits"):
            depths.read()
    # Then both readers got their answer; the stuck read ends when the socket closes
