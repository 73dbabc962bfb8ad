"""A worker host's Prometheus endpoint as an operator scrapes it, after real work by real
processes: histograms of what the workers observed, and what the sweeps repaired."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.prom import Samples, delta, samples, total
from tests.support.rabbitmq import purge
from tests.support.stack import TERMINAL, Stack, submit, wait_status
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    import httpx

    from tests.support.media_server import MediaServer

pytestmark = pytest.mark.e2e

SOURCES = ("/media/a.mp4", "/media/b.mp4", "/media/clip.mp4")


def _scrape(stack: Stack) -> Samples:
    return samples(wait_for(stack.worker_metrics, timeout=30, what="the worker's metrics endpoint"))


def _seconds(attempt: dict[str, Any]) -> float:
    started = datetime.fromisoformat(attempt["started_at"])
    return (datetime.fromisoformat(attempt["finished_at"]) - started).total_seconds()


def _attempts(http: httpx.Client, job_ids: list[str]) -> list[dict[str, Any]]:
    return [a for j in job_ids for a in http.get(f"/v1/jobs/{j}/attempts").json()["items"]]


def test_the_worker_histograms_count_what_the_workers_did(stack: Stack, media: MediaServer) -> None:
    # Given a worker host of two processes (one endpoint for both) and its metrics as they stand
    stack.stop("worker")
    stack.start_worker(processes=2)
    before = _scrape(stack)
    with stack.http() as http:
        # When three downloads succeed and one URL is not found
        good = [submit(http, media.url(path)) for path in SOURCES]
        bad = submit(http, media.url("/missing.mp4"))
        files = [wait_status(http, job_id, TERMINAL)["file"] for job_id in good]
        assert wait_status(http, bad, TERMINAL)["status"] == "failed"
        attempts = _attempts(http, [*good, bad])

    def settled() -> Samples | None:
        # Stored sizes are observed just after the row commits; busy counts as messages end.
        after = samples(stack.worker_metrics() or "")
        stored = delta(before, after, "haul_download_size_bytes_count") >= len(good)
        idle = total(after, "haul_worker_messages_in_progress") == 0
        return after if stored and idle else None

    after = wait_for(settled, timeout=30, what="the worker's metrics to settle")

    # Then each histogram counted exactly what happened, and summed the right amounts
    def moved(name: str, **labels: str) -> float:
        return delta(before, after, name, **labels)

    assert moved("haul_download_size_bytes_count") == 3
    assert moved("haul_download_size_bytes_sum") == sum(f["size"] for f in files)
    assert moved("haul_download_first_byte_seconds_count") == 3
    by_outcome = {
        (step, outcome): moved("haul_attempt_duration_seconds_count", step=step, outcome=outcome)
        for step, outcome in {(a["step"], a["outcome"]) for a in attempts}
    }
    assert by_outcome == {
        ("probe", "succeeded"): 3,
        ("download", "succeeded"): 3,
        ("probe", "failed"): 1,
    }
    downloads = [_seconds(a) for a in attempts if a["step"] == "download"]
    assert moved("haul_attempt_duration_seconds_sum", step="download", outcome="succeeded") == (
        pytest.approx(sum(downloads), abs=1e-3)
    )
    # a first byte comes within its download attempt
    assert 0 < moved("haul_download_first_byte_seconds_sum") <= sum(downloads)
    # and both processes' threads are counted once each
    assert total(after, "haul_worker_threads") == 8


def test_a_sweep_republishes_a_lost_message_and_counts_it(stack: Stack, media: MediaServer) -> None:
    # Given a queued job whose message never reached the broker, while no worker ran
    stack.stop("worker")
    with stack.http() as http:
        job_id = submit(http, media.url("/media/c.mp4"))
        # (its publish is marked in a batch just after the answer: wait for the mark, so
        # that it cannot land after the UPDATE below and hide the lost message)
        wait_for(
            lambda: stack.query(
                "SELECT 1 FROM jobs WHERE id = %s AND published_at IS NOT NULL", uuid.UUID(job_id)
            ),
            timeout=10,
            what="the publish to be marked",
        )
        purge(f"{stack.queue_prefix}.probe")
        stack.query(
            "UPDATE jobs SET published_at = NULL, queued_at = now() - interval '1 minute' "
            "WHERE id = %s RETURNING id",
            uuid.UUID(job_id),
        )
        # and a worker host started since, with its metrics as they stand
        stack.start_worker()
        before = _scrape(stack)

        def swept() -> Samples | None:
            now = samples(stack.worker_metrics() or "")
            return now if delta(before, now, "haul_sweeps_total") >= 1 else None

        # When the scheduler starts (periodiq sends every periodic message once at start)
        stack.start_scheduler()
        try:
            after = wait_for(swept, timeout=60, what="a sweep to complete")
        finally:
            stack.stop("scheduler")
        # Then the sweep published the job again, and the job ran
        assert wait_status(http, job_id, TERMINAL)["status"] == "succeeded"
    assert delta(before, after, "haul_swept_rows_total", kind="republished") == 1
    assert delta(before, after, "haul_swept_rows_total", kind="requeued") == 0
    assert after[("haul_sweep_last_success_timestamp_seconds", ())] > 0
