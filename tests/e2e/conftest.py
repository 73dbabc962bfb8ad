"""The stack of end-to-end tests: the API (uvicorn) and a worker (`dramatiq actors`) as
real processes, on a database and queue prefix of their own per module (see
tests/support/stack.py for what a test can do with it).

A test module may set ``STACK_ENV`` (extra ``HAUL_*`` variables) to tune the stack.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from tests.support.network import TEST_EGRESS_ALLOW, free_port
from tests.support.postgres import RUN_ID, admin_execute, db_url
from tests.support.rabbitmq import BROKER_URL, delete_queues, waiting_and_consumers
from tests.support.stack import BIN, Stack, create_key, wait_api_ready

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx

    from tests.support.media_server import MediaServer


@pytest.fixture(scope="module")
def stack(
    request: pytest.FixtureRequest,
    postgres_template: str,
    rabbitmq: str,
    media: MediaServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    root = tmp_path_factory.mktemp(module)
    database = f"haul_test_{RUN_ID}_{module}"
    admin_execute(f'CREATE DATABASE "{database}" TEMPLATE "{postgres_template}"')
    prefix = f"haule2e{RUN_ID}{module}"
    port = free_port()
    env = {
        **os.environ,
        "HAUL_DATABASE_URL": db_url(database),
        "HAUL_BROKER_URL": BROKER_URL,
        "HAUL_QUEUE_PREFIX": prefix,
        "HAUL_STORAGE_DIR": str(root / "files"),
        "HAUL_TEMP_DIR": str(root / "tmp"),
        "HAUL_MAX_RETRIES": "1",
        "HAUL_MIN_BACKOFF_MS": "200",
        "HAUL_MAX_BACKOFF_MS": "500",
        "HAUL_HEARTBEAT_S": "0.3",
        "HAUL_EGRESS_ALLOW": TEST_EGRESS_ALLOW,
        "HAUL_LOG_JSON": "true",
        "HAUL_WORKER_METRICS_DIR": str(root / "metrics"),
        # Where worker runs note themselves for `haul ytdlp update`: this stack's only.
        "HAUL_RUN_DIR": str(root / "runs"),
        "dramatiq_queue_prefetch": "4",
        # Dramatiq's main process relays its workers' logs; tests read them as they come.
        "PYTHONUNBUFFERED": "1",
        **getattr(request.module, "STACK_ENV", {}),
    }
    stack = Stack(
        f"http://127.0.0.1:{port}",
        create_key(env, "e2e"),
        root / "files",
        root / "tmp",
        prefix,
        root,
        env,
        database,
    )
    stack.start(
        "api",
        [str(BIN / "uvicorn"), "service.api.app:app", "--host", "127.0.0.1", "--port", str(port)],
    )
    stack.start_worker()

    try:
        wait_api_ready(stack.base_url)
        yield stack
    finally:
        for name in list(stack.processes):
            stack.stop(name)
        delete_queues(prefix)
        admin_execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@pytest.fixture(scope="module")
def admin(stack: Stack) -> Iterator[httpx.Client]:
    """An admin client of the module's stack (queue control, sites)."""
    key, _ = stack.create_client("operator", "--admin")
    with stack.http(key) as http:
        yield http


@pytest.fixture(autouse=True)
def _show_logs_on_failure(request: pytest.FixtureRequest, stack: Stack) -> Iterator[None]:
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for name in ("api", "worker", "worker2", "host-b", "deliveries", "scheduler", "scheduler2"):
            tail = [line for line in stack.log(name).splitlines() if "GET /v1/jobs" not in line]
            print(f"--- {name}.log (last lines)", *tail[-40:], sep="\n")
        unfinished = stack.query(
            "SELECT j.id, j.status, j.phase, j.step, j.attempts, j.held, j.published_at, "
            "j.last_error, j.lease_owner, j.lease_expires_at, "
            "array_agg(a.outcome || '@' || a.worker ORDER BY a.id) FROM jobs j "
            "LEFT JOIN job_attempts a ON a.job_id = j.id "
            "WHERE j.status NOT IN ('succeeded', 'failed', 'cancelled') GROUP BY j.id"
        )
        print("--- unfinished jobs", *unfinished, sep="\n")
        queues = {
            step: waiting_and_consumers(f"{stack.queue_prefix}.{step}")
            for step in ("probe", "download")
        }
        print(f"--- queues (ready, consumers): {queues}")
