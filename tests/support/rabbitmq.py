"""The test RabbitMQ, looked at the way an operator would: what waits in a queue, what
a dead-letter queue holds, and the cleanup of one test's queues."""

from __future__ import annotations

import json
import os
from typing import Any

import pika

BROKER_URL = os.environ.get("HAUL_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
STEPS = ("probe", "download", "sweeps", "callbacks", "subscriptions")


def delete_queues(prefix: str) -> None:
    """Delete every queue under ``prefix`` (work, delay and dead-letter), if there is a broker."""
    try:
        connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    except pika.exceptions.AMQPError:
        return
    try:
        for step in STEPS:
            for suffix in ("", ".DQ", ".XQ"):
                channel = connection.channel()
                try:
                    channel.queue_delete(f"{prefix}.{step}{suffix}")
                    channel.close()
                except pika.exceptions.AMQPError:
                    pass
    finally:
        connection.close()


def queue_depth(queue: str) -> int:
    """Messages ready in ``queue`` (0 when it does not exist yet)."""
    connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    try:
        channel = connection.channel()
        try:
            return int(channel.queue_declare(queue, passive=True).method.message_count)
        except pika.exceptions.ChannelClosedByBroker:
            return 0
    finally:
        connection.close()


def take_messages(queue: str) -> list[tuple[dict[str, Any], int | None]]:
    """Consume every ready message of ``queue``: each decoded body with its AMQP priority.

    A queue nothing was ever published to does not exist yet: it holds nothing.
    """
    connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    taken: list[tuple[dict[str, Any], int | None]] = []
    try:
        channel = connection.channel()
        while True:
            try:
                method, properties, body = channel.basic_get(queue, auto_ack=True)
            except pika.exceptions.ChannelClosedByBroker:
                return taken
            if method is None:
                return taken
            taken.append((json.loads(body), properties.priority))
    finally:
        connection.close()


def dead_letter_job_ids(queue: str) -> set[str]:
    """The job ids of the messages in a dead-letter queue, looked at and left in place."""
    connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    found: set[str] = set()
    try:
        channel = connection.channel()
        while True:
            method, _, body = channel.basic_get(queue, auto_ack=False)
            if method is None:
                return found  # closing the connection puts every message back
            found.update(str(arg) for arg in json.loads(body)["args"])
    finally:
        connection.close()


def ready(queue: str) -> int:
    """How many messages wait in a queue, ready for a consumer."""
    connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.message_count)
    finally:
        connection.close()


def waiting_and_consumers(queue: str) -> tuple[int, int]:
    """Messages ready in a queue and how many consumers it has ((0, 0) when it does not exist)."""
    connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    try:
        try:
            method = connection.channel().queue_declare(queue, passive=True).method
        except pika.exceptions.ChannelClosedByBroker:
            return 0, 0
        return int(method.message_count), int(method.consumer_count)
    finally:
        connection.close()


def purge(queue: str) -> None:
    """Drop every ready message of a queue: a broker that lost them."""
    connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    try:
        connection.channel().queue_purge(queue)
    finally:
        connection.close()
