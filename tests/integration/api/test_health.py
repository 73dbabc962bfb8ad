"""Liveness and readiness (service/api/health.py) in-process, on a real database and RabbitMQ,
and what the API answers when one of them is down.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from litestar.testing import TestClient

from service.api.app import create_app
from service.runtime import build_runtime
from tests.support.api import SOURCE, problem
from tests.support.network import free_port
from tests.support.rabbitmq import queue_depth

if TYPE_CHECKING:
    from litestar import Litestar

    from service.settings import Settings

pytestmark = pytest.mark.integration


# --- health and schema --------------------------------------------------------------------------


def test_liveness_and_readiness_answer_ok(api: TestClient[Litestar]) -> None:
    # When an orchestrator probes the API (no key needed)
    live = api.get("/health/live")
    ready = api.get("/health/ready")
    # Then the process is live, and ready because the database and broker answer
    assert live.status_code == 200
    assert live.json()["status"] == "ok"
    assert ready.status_code == 200
    assert ready.json()["status"] == "ok"
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
    assert ready.json()["queues_error"] is None


def test_readiness_is_503_and_names_the_database_when_it_is_down(settings: Settings) -> None:
    # Given an API whose database is unreachable (nothing listens on the port)
    down = settings.model_copy(
        update={"database_url": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/haul"}
    )
    rt = build_runtime(down)
    try:
        with TestClient(create_app(down, rt)) as api:
            # When it is probed
            live = api.get("/health/live")
            ready = api.get("/health/ready")
    finally:
        rt.broker.close()
        rt.db.dispose()
    # Then it is alive but not ready, and the check says the database is the reason
    assert live.status_code == 200
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
    assert ready.json()["checks"]["database"] != "ok"
    assert "database" in ready.json()["checks"]["database"]
    assert ready.json()["checks"]["broker"] == "ok"


def test_with_the_database_down_the_api_answers_503_and_accepts_nothing(
    settings: Settings,
) -> None:
    # Given an API whose database is unreachable
    down = settings.model_copy(
        update={"database_url": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/haul"}
    )
    rt = build_runtime(down)
    try:
        with TestClient(create_app(down, rt)) as api:
            # When a client submits or lists (its key cannot even be checked)
            headers = {"Authorization": "Bearer haul_" + "k" * 43}
            submitted = api.post("/v1/jobs", json={"url": SOURCE}, headers=headers)
            listed = api.get("/v1/jobs", headers=headers)
    finally:
        rt.broker.close()
        rt.db.dispose()
    # Then both are 503 problems that say to come back, never a 202 without a row
    for response in (submitted, listed):
        body = problem(response, 503)
        assert "database" in body["detail"]
        assert response.headers["retry-after"] == "5"
    assert queue_depth(f"{settings.queue_prefix}.probe") == 0


def test_readiness_is_503_and_names_the_broker_when_it_is_down(
    api_without_broker: TestClient[Litestar],
) -> None:
    # Given an API whose broker is unreachable
    api = api_without_broker
    # When it is probed
    ready = api.get("/health/ready")
    # Then it is not ready, and the broker check says why
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] == "ok"
    assert ready.json()["checks"]["broker"] != "ok"
    # and the queue depths were not asked for
    assert ready.json()["queues"] is None
    assert ready.json()["queues_error"] == "not read: the broker is unreachable"
