"""Fixtures for tests that drive the API or the use cases in-process against real
PostgreSQL and RabbitMQ; they apply to every module under tests/integration/."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from litestar.testing import TestClient

from service.api.app import create_app
from service.intake.clients import create_client
from service.runtime import build_runtime
from tests.support.jobs import job_maker
from tests.support.network import free_port

if TYPE_CHECKING:
    import uuid
    from collections.abc import Callable, Iterator

    from litestar import Litestar

    from service.db.models import Client
    from service.runtime import Runtime
    from service.settings import Settings


@pytest.fixture
def api(settings: Settings, runtime: Runtime) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(settings, runtime)) as client:
        yield client


@pytest.fixture
def api_without_broker(settings: Settings) -> Iterator[TestClient[Litestar]]:
    """The API with RabbitMQ unreachable (nothing listens on the port); same database."""
    broken = settings.model_copy(
        update={"broker_url": f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"}
    )
    rt = build_runtime(broken)
    with TestClient(create_app(broken, rt)) as client:
        yield client
    rt.marks.close()
    rt.broker.close()
    rt.db.dispose()


@pytest.fixture
def auth(runtime: Runtime) -> dict[str, str]:
    """Headers of a fresh client's key."""
    _, key = create_client(runtime, "alice")
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def other_auth(runtime: Runtime) -> dict[str, str]:
    _, key = create_client(runtime, "mallory")
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def client(runtime: Runtime) -> Client:
    """A client that submits jobs by calling the use cases (no key needed)."""
    made, _ = create_client(runtime, "x")
    return made


@pytest.fixture
def job(runtime: Runtime, client: Client) -> Callable[..., uuid.UUID]:
    """Stores a job row of ``client`` per call, with the fields given (``job_maker``)."""
    return job_maker(runtime, client)


@pytest.fixture
def admin(runtime: Runtime) -> dict[str, str]:
    """Headers of an operator's key (a client created with ``admin=True``)."""
    _, key = create_client(runtime, "operator", admin=True)
    return {"Authorization": f"Bearer {key}"}
