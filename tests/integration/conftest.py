"""Fixtures for tests that drive the API in-process against real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pika
import pytest
from litestar.testing import TestClient

from service.api.app import create_app
from service.intake.clients import authenticate, create_client
from tests.conftest import BROKER_URL

if TYPE_CHECKING:
    from collections.abc import Iterator

    from litestar import Litestar

    from service.db.models import Client
    from service.runtime import Runtime
    from service.settings import Settings


@pytest.fixture
def api(settings: Settings, runtime: Runtime) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(settings, runtime)) as client:
        yield client


@pytest.fixture
def auth(runtime: Runtime) -> dict[str, str]:
    """Headers of a fresh client's key."""
    _, key = create_client(runtime, "alice")
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def other_auth(runtime: Runtime) -> dict[str, str]:
    _, key = create_client(runtime, "mallory")
    return {"Authorization": f"Bearer {key}"}


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


def client_of(runtime: Runtime, headers: dict[str, str]) -> Client:
    """The client whose key is in ``headers`` (as the API would find it)."""
    return authenticate(runtime, headers["Authorization"])
