"""Outages of the servers haul stands on, with real processes and real servers.

RabbitMQ restarted under load, PostgreSQL restarted mid-stream, and a download
that outlives RabbitMQ's consumer timeout. These tests stop and start the
machine's own RabbitMQ and PostgreSQL (each machine has its own; nothing else
may share them during a run), and always start them again.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.support import services
from tests.support.rabbitmq import waiting_and_consumers
from tests.support.skips import unavailable
from tests.support.stack import (
    TERMINAL,
    Stack,
    assert_invariants,
    download_outcomes,
    submit,
    wait_downloading,
    wait_status,
)
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.support.media_server import MediaServer

pytestmark = pytest.mark.e2e

STACK_ENV = {
    "HAUL_LEASE_S": "5",
    "HAUL_MAX_RETRIES": "2",
    # The smallest republish delay, so one sweep soon after an outage finds every lost message.
    "HAUL_REPUBLISH_AFTER_S": "10",
}


@pytest.fixture(scope="module", autouse=True)
def _controllable() -> Iterator[None]:
    """Skip (locally) or fail (CI) when the servers cannot be stopped and started here;
    whatever happens, leave them running."""
    reason = services.missing_controls()
    if reason is not None:
        unavailable(reason)
    yield
    services.start_postgres()
    services.start_rabbitmq()


class Submitter(threading.Thread):
    """Submits ``count`` jobs at a steady pace and keeps every answer."""

    def __init__(self, stack: Stack, url: str, count: int, per_second: float) -> None:
        super().__init__(daemon=True)
        self.stack, self.url, self.count, self.pause = stack, url, count, 1 / per_second
        self.answers: list[httpx.Response] = []
        self.errors: list[str] = []

    def run(self) -> None:
        with self.stack.http() as http:
            for _ in range(self.count):
                began = time.monotonic()
                try:
                    self.answers.append(http.post("/v1/jobs", json={"url": self.url}))
                except httpx.HTTPError as exc:
                    self.errors.append(repr(exc))
                time.sleep(max(0.0, self.pause - (time.monotonic() - began)))

    def accepted(self) -> list[str]:
        return [r.json()["id"] for r in self.answers if r.status_code == 202]


def _counts(stack: Stack) -> dict[str, int]:
    return dict(stack.query("SELECT status, count(*) FROM jobs GROUP BY status"))


def _run_one_sweep(stack: Stack) -> str:
    """Start the scheduler, which fires the sweep once at start; stop it after that sweep."""
    before = stack.log("worker").count('"event": "sweep"')
    stack.start_scheduler()
    try:
        wait_for(
            lambda: stack.log("worker").count('"event": "sweep"') > before,
            timeout=30,
            what="one sweep",
        )
    finally:
        stack.stop("scheduler")
    sweeps = [line for line in stack.log("worker").splitlines() if '"event": "sweep"' in line]
    return sweeps[-1]


def _settled(stack: Stack, republish_after: float) -> bool:
    """The worker consumes again and its queues are drained, nothing is in a worker's hands,
    and every waiting job is one the sweep must republish (never published, or published
    longer ago than the republish delay)."""
    for step in ("probe", "download"):
        ready, consumers = waiting_and_consumers(f"{stack.queue_prefix}.{step}")
        if ready or not consumers:
            return False
    busy = stack.query(
        "SELECT count(*) FROM jobs WHERE status = 'running' "
        "OR (status = 'retrying' AND next_attempt_at > now()) "
        "OR (status = 'queued' AND published_at > now() - make_interval(secs => %s))",
        republish_after,
    )
    return busy[0][0] == 0


def test_a_rabbitmq_restart_under_load_loses_no_accepted_job(
    stack: Stack, media: MediaServer
) -> None:
    # Given 300 jobs being submitted (25 a second) and processed
    submitter = Submitter(stack, media.url("/media/a.mp4"), count=300, per_second=25)
    submitter.start()
    wait_for(lambda: len(submitter.answers) >= 75, timeout=30, what="75 submissions")
    # When RabbitMQ is stopped for a while in the middle, then started again
    services.stop_rabbitmq()
    try:
        during = len(submitter.answers)
        wait_for(lambda: len(submitter.answers) >= during + 50, timeout=30, what="submissions")
    finally:
        services.start_rabbitmq()
    submitter.join(timeout=60)
    # Then every submission was accepted: the row is written before the doorbell rings
    assert submitter.errors == []
    assert [r.status_code for r in submitter.answers] == [202] * 300
    accepted = submitter.accepted()
    print(f"after the restart: {_counts(stack)}")
    # And once the fleet has done what its messages allow, one sweep rings the lost doorbells
    wait_for(lambda: _settled(stack, 10), timeout=120, interval=0.5, what="the fleet to settle")
    print(f"before the sweep: {_counts(stack)}; sweep: {_run_one_sweep(stack)}")

    def all_ended() -> bool:
        rows = stack.query(
            "SELECT count(*) FROM jobs WHERE id = ANY(%s) AND status IN ('succeeded', 'failed', "
            "'cancelled')",
            [uuid.UUID(i) for i in accepted],
        )
        return rows[0][0] == len(accepted)

    wait_for(all_ended, timeout=120, interval=0.5, what="every accepted job to end")
    # And each one succeeded
    assert _counts(stack) == {"succeeded": 300}
    assert_invariants(stack)


def _is_503_problem(response: httpx.Response) -> bool:
    return (
        response.status_code == 503
        and response.headers["content-type"].startswith("application/problem+json")
        and response.json()["status"] == 503
        and "retry-after" in response.headers
    )


def test_a_postgresql_restart_mid_stream_accepts_nothing_it_could_lose(
    stack: Stack, media: MediaServer
) -> None:
    accepted_before = {str(i) for (i,) in stack.query("SELECT id FROM jobs")}
    stack.start_scheduler()  # a deployment runs one; it repairs what the outage broke
    try:
        # Given jobs being submitted (10 a second) and processed
        submitter = Submitter(stack, media.url("/media/b.mp4"), count=120, per_second=10)
        submitter.start()
        wait_for(lambda: len(submitter.answers) >= 30, timeout=30, what="30 submissions")
        # When PostgreSQL stops for a few seconds and starts again
        services.stop_postgres()
        try:
            during = len(submitter.answers)
            wait_for(lambda: len(submitter.answers) >= during + 20, timeout=30, what="submits")
        finally:
            services.start_postgres()
        submitter.join(timeout=60)
        # Then the API answered either 202 with a row, or 503 problem+json with Retry-After
        assert submitter.errors == []
        refused = [r for r in submitter.answers if r.status_code != 202]
        assert refused, "the outage was not seen by the API"
        assert all(_is_503_problem(r) for r in refused), [(r.status_code, r.text) for r in refused]
        accepted = submitter.accepted()
        rows = {str(i) for (i,) in stack.query("SELECT id FROM jobs")} - accepted_before
        assert rows == set(accepted), "a 202 without a row, or a row without a 202"
        print(f"accepted {len(accepted)}, refused {len(refused)} with 503")
        # And the workers reconnect and finish every accepted job
        with stack.http() as http:
            for job_id in accepted:
                job = wait_status(http, job_id, TERMINAL, timeout=150)
                assert job["status"] == "succeeded", job
    finally:
        stack.stop("scheduler")
    assert_invariants(stack)


def test_a_download_outliving_the_consumer_timeout_succeeds_once(
    stack: Stack, media: MediaServer
) -> None:
    # Given RabbitMQ closes a channel whose delivery stays unacknowledged for 3 s
    # (checked every second), and a worker whose channels were opened under that rule
    with services.rabbitmq_settings(consumer_timeout=3_000, channel_tick_interval=1_000):
        stack.stop("worker")
        stack.start_worker()
        stack.wait_worker_ready("worker")
        try:
            with stack.http() as http:
                # When a download takes about 10 s
                job_id = submit(http, media.url("/slow/long.mp4?bps=60000"))
                wait_downloading(http, job_id)
                job = wait_status(http, job_id, TERMINAL, timeout=60)
                # Then RabbitMQ did take the message back and redeliver it...
                log = stack.log("worker")
                assert "PRECONDITION_FAILED" in log or "consumer ack timed out" in log.lower()
                assert any(
                    job_id in line and "message dropped" in line for line in log.splitlines()
                ), "the redelivered message was not dropped"
                # ...and still the job ran once, with one file
                assert job["status"] == "succeeded", job
                assert job["attempts"] == 1
                assert download_outcomes(http, job_id) == ["succeeded"]
                # And the worker recovered its channel: the next job runs
                after: dict[str, Any] = wait_status(
                    http, submit(http, media.url("/media/clip.mp4")), TERMINAL
                )
                assert after["status"] == "succeeded"
        finally:
            stack.stop("worker")
    stack.start_worker()
    assert_invariants(stack)
