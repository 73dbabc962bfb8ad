"""Shared fixtures: real PostgreSQL (a database per test, copied from a migrated
template), real RabbitMQ (queues under a prefix per test), and a local media server.

Locally, a test whose service is down is skipped with the reason; under
``CI=true`` it fails instead, so CI can never pass by skipping.
"""

from __future__ import annotations

import itertools
import shutil
from typing import TYPE_CHECKING

import pika
import psycopg
import pytest

from service.db.migrate import upgrade
from service.runtime import Runtime, build_runtime
from service.settings import Settings
from tests.support.media_server import MediaServer, make_media
from tests.support.network import TEST_EGRESS_ALLOW
from tests.support.postgres import ADMIN_DATABASE_URL, RUN_ID, admin_execute, db_url
from tests.support.rabbitmq import BROKER_URL, delete_queues
from tests.support.receiver import Receiver
from tests.support.skips import unavailable

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A database migrated once per run; each test copies it (fast, isolated)."""
    try:
        admin_execute("SELECT 1")
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL is not reachable at {ADMIN_DATABASE_URL}: {exc}")
    name = f"haul_test_{RUN_ID}_template"
    upgrade(db_url(name), Settings(_env_file=None).migrations_dir)  # type: ignore[call-arg]
    yield name
    admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(postgres_template: str) -> Iterator[str]:
    name = f"haul_test_{RUN_ID}_{next(_counter)}"
    admin_execute(f'CREATE DATABASE "{name}" TEMPLATE "{postgres_template}"')
    yield db_url(name)
    admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def rabbitmq() -> str:
    try:
        pika.BlockingConnection(pika.URLParameters(BROKER_URL)).close()
    except pika.exceptions.AMQPError as exc:
        unavailable(f"RabbitMQ is not reachable at {BROKER_URL}: {exc!r}")
    return BROKER_URL


@pytest.fixture
def queue_prefix(rabbitmq: str) -> Iterator[str]:
    """Queues of one test: haultest<run><n>.probe and so on, deleted afterwards."""
    prefix = f"haultest{RUN_ID}{next(_counter)}"
    yield prefix
    delete_queues(prefix)


@pytest.fixture
def settings(database_url: str, queue_prefix: str, tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        broker_url=BROKER_URL,
        queue_prefix=queue_prefix,
        storage_dir=tmp_path / "files",
        temp_dir=tmp_path / "tmp",
        max_retries=2,
        min_backoff_ms=200,
        max_backoff_ms=1_000,
        lease_s=10,
        heartbeat_s=0.2,
        log_json=True,
        # The media server is on 127.0.0.1; egress tests put canaries on other loopback addresses.
        egress_allow=TEST_EGRESS_ALLOW,
    )


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = build_runtime(settings)
    yield rt
    rt.marks.close()
    rt.broker.close()
    rt.db.dispose()


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("ffmpeg") is None:
        unavailable("ffmpeg is not installed")
    path = tmp_path_factory.getbasetemp() / "media"
    path.mkdir(exist_ok=True)
    make_media(path)
    return path


@pytest.fixture(scope="session")
def media(media_dir: Path) -> Iterator[MediaServer]:
    with MediaServer(media_dir) as server:
        yield server


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    """A local webhook receiver: ``hooks.url("/a")`` to send to, then read what came."""
    with Receiver() as receiver:
        yield receiver


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the test item, so fixtures can print logs on failure."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
