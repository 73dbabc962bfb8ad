"""The API's Prometheus metrics (service/observe/metrics.py, served at /metrics) in-process,
on a real database and RabbitMQ: queue depths and jobs by state.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest
from litestar.testing import TestClient

from service.db import control as control_rows
from service.db import sites as site_rows
from service.dispatch import queue_names
from service.domain.states import Step
from tests.support.api import submit
from tests.support.prom import delta, samples
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    from litestar import Litestar

    from service.runtime import Runtime
    from service.settings import Settings

pytestmark = pytest.mark.integration


def test_readiness_and_metrics_show_how_many_messages_wait_in_each_queue(
    api: TestClient[Litestar], runtime: Runtime, settings: Settings
) -> None:
    # Given three probe messages on this test's own queues, and no worker consuming them
    for _ in range(3):
        runtime.publish(Step.PROBE, uuid.uuid4())
    probe = f"{settings.queue_prefix}.probe"

    # When an operator asks for readiness
    def depths() -> dict[str, Any] | None:
        queues: dict[str, Any] = api.get("/health/ready").json()["queues"]
        return queues if queues[probe] == {"ready": 3, "consumers": 0} else None

    queues = wait_for(depths, timeout=10, what="the three messages in the probe queue")
    # Then every queue of the deployment is listed: the probe queue and its delay and
    # dead-letter queues (declared with it), and null for those nobody declared yet
    assert list(queues) == queue_names(settings)
    assert queues[f"{probe}.DQ"] == queues[f"{probe}.XQ"] == {"ready": 0, "consumers": 0}
    assert queues[f"{settings.queue_prefix}.download"] is None
    # and /metrics reports the same depths, for alerts
    metrics = samples(api.get("/metrics").text)
    assert metrics[("haul_queue_messages_ready", (("queue", probe),))] == 3
    assert metrics[("haul_queue_consumers", (("queue", probe),))] == 0
    assert ("haul_queue_messages_ready", (("queue", f"{settings.queue_prefix}.download"),)) not in (
        metrics
    )


def test_metrics_count_held_jobs_by_reason(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime
) -> None:
    # Given a paused probe queue
    with runtime.db.session() as session:
        control_rows.set_paused(session, "probe", True)
    # When two jobs are submitted to it
    for _ in range(2):
        assert submit(api, auth)["held"] == "queue_paused"
    # Then /metrics counts them as queued, and as held for that reason
    metrics = samples(api.get("/metrics").text)
    assert metrics[("haul_jobs", (("status", "queued"), ("step", "probe")))] == 2
    assert metrics[("haul_jobs_held", (("reason", "queue_paused"), ("step", "probe")))] == 2


def test_metrics_show_a_site_breaker_with_its_state_counts_and_retry_at(
    api: TestClient[Litestar], runtime: Runtime
) -> None:
    # Given a site whose breaker opened for guests
    with runtime.db.session() as session:
        for _ in range(runtime.settings.breaker_threshold):
            site_rows.throttled(
                session, "example.com", "guest", runtime.settings.breaker_policy, "429"
            )
    # Then /metrics shows its state, throttles, openings and when it lets a job through
    metrics = samples(api.get("/metrics").text)
    key = (("identity", "guest"), ("site", "example.com"))
    assert metrics[("haul_site_breaker_state", (*key, ("state", "open")))] == 1
    assert metrics[("haul_site_breaker_failures", key)] == runtime.settings.breaker_threshold
    assert metrics[("haul_site_breaker_opens", key)] == 1
    assert metrics[("haul_site_breaker_retry_at_seconds", key)] > 0
    assert metrics[("haul_site_breaker_cooling_jobs", key)] == 0


def test_metrics_count_the_statements_and_commits_this_process_sent(
    api: TestClient[Litestar], auth: dict[str, str], runtime: Runtime
) -> None:
    # Given an API that has answered a request
    submit(api, auth)
    runtime.marks.close()
    before = samples(api.get("/metrics").text)
    # When a client submits one more job
    submit(api, auth)
    runtime.marks.close()
    # Then the next scrape counts its statements and commits (read before the scrape reads
    # the job tables, so the earlier scrape's own reads are in the difference too)
    after = samples(api.get("/metrics").text)
    label = {"process": "api"}
    assert delta(before, after, "haul_db_statements_total", **label) >= 3
    assert delta(before, after, "haul_db_commits_total", **label) >= 2
    assert after[("haul_db_statements_total", (("process", "api"),))] <= (
        runtime.db.counts.statements
    )
