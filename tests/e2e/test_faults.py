"""Faults with real processes: a worker killed mid-download, a message delivered twice.

Each test ends by checking the invariants over the whole table (one artifact per
succeeded job with its file and hash, no overlapping attempts, no orphan files).
"""

from __future__ import annotations

import itertools
import signal
import time
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

import pytest

from service.dispatch import Queue, build_broker, publish
from service.settings import Settings
from tests.support.rabbitmq import BROKER_URL, dead_letter_job_ids, purge, ready
from tests.support.stack import (
    TERMINAL,
    Stack,
    assert_invariants,
    download_outcomes,
    submit,
    wait_downloading,
    wait_lease_expired,
    wait_status,
)
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    from tests.support.media_server import MediaServer

pytestmark = pytest.mark.e2e

#: A short lease, so a dead worker's job is recovered within seconds.
STACK_ENV = {
    "HAUL_LEASE_S": "5",
    "HAUL_MAX_RETRIES": "2",
    # Retries wait 0.5-1 s, then 1-2 s (Dramatiq's exponential backoff with jitter).
    "HAUL_MIN_BACKOFF_MS": "1000",
    "HAUL_MAX_BACKOFF_MS": "4000",
    # Throttling waits 3 s, against a backoff of at most 0.5 s for other failures.
    "HAUL_RATE_LIMITED_BACKOFF_MS": "3000",
}


@pytest.mark.parametrize("schedulers", [1, 2], ids=["one-scheduler", "two-schedulers-by-mistake"])
def test_a_killed_workers_job_is_recovered_and_succeeds_once(
    stack: Stack, media: MediaServer, schedulers: int
) -> None:
    with stack.http() as http:
        # Given a download under way
        job_id = submit(http, media.url("/slow/long.mp4?bps=150000"))
        wait_downloading(http, job_id)
        # When its worker is killed outright (no chance to clean up) and a new one starts
        stack.stop("worker", signal.SIGKILL)
        died = time.monotonic()
        stack.start_worker()
        # Then once the lease has expired, the scheduler's sweep hands the job to the new worker
        wait_lease_expired(stack, job_id)
        sweeps_before = stack.log("worker").count('"event": "sweep"')
        names = ["scheduler", "scheduler2"][:schedulers]
        for name in names:  # two sweeps at once must do the work once
            stack.start_scheduler(name)
        try:
            wait_for(
                lambda: http.get(f"/v1/jobs/{job_id}").json()["attempts"] == 2,
                timeout=30,
                what="the job to be claimed again",
            )
            recovered = time.monotonic() - died
            wait_for(
                lambda: stack.log("worker").count('"event": "sweep"') - sweeps_before >= schedulers,
                timeout=20,
                what=f"{schedulers} sweep run(s)",
            )
            job = wait_status(http, job_id, TERMINAL)
        finally:
            for name in names:
                stack.stop(name)
        print(f"worker death → job claimed again: {recovered:.1f} s (5 s lease)")
        # And it succeeded exactly once, with one file; the dead attempt is on record
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 2
        assert download_outcomes(http, job_id) == ["abandoned", "succeeded"]
    assert_invariants(stack)


def test_a_message_delivered_twice_downloads_once(stack: Stack, media: MediaServer) -> None:
    with stack.http() as http:
        # Given a job that already succeeded
        job_id = submit(http, media.url("/media/clip.mp4"))
        assert wait_status(http, job_id, TERMINAL)["status"] == "succeeded"
        before = http.get(f"/v1/jobs/{job_id}/attempts").json()["items"]
        # When its probe and download messages arrive again
        settings = Settings(_env_file=None, broker_url=BROKER_URL, queue_prefix=stack.queue_prefix)  # type: ignore[call-arg]
        broker = build_broker(settings)
        try:
            publish(broker, settings, Queue.PROBE, uuid.UUID(job_id))
            publish(broker, settings, Queue.DOWNLOAD, uuid.UUID(job_id))
        finally:
            broker.close()

        # Then the worker drops both, and nothing about the job changes
        def dropped_twice() -> bool:
            lines = [
                line
                for line in stack.log("worker").splitlines()
                if job_id in line and "message dropped" in line
            ]
            return len(lines) >= 2

        wait_for(dropped_twice, timeout=20, what="both duplicate messages to be dropped")
        job = http.get(f"/v1/jobs/{job_id}").json()
        assert job["status"] == "succeeded"
        assert http.get(f"/v1/jobs/{job_id}/attempts").json()["items"] == before
    assert_invariants(stack)


def test_sigterm_hands_a_running_download_to_another_worker(
    stack: Stack, media: MediaServer
) -> None:
    with stack.http() as http:
        # Given a download under way on one worker, and a second worker idle. The first
        # attempt's GETs are slow (15 s), so the download outlasts the second worker's start
        # on a loaded machine; the GETs after them are not, so the handover ends quickly.
        gets = media.hits("/media/long.mp4", "GET")
        fast = submit(http, media.url("/media/long.mp4"))
        assert wait_status(http, fast, TERMINAL)["status"] == "succeeded"
        gets = media.hits("/media/long.mp4", "GET") - gets  # a job's GETs: probe, download
        slow = f"/slow/long.mp4?bps=40000&key={uuid.uuid4().hex}&times={gets}"
        job_id = submit(http, media.url(slow))
        wait_downloading(http, job_id)
        stack.start_worker("worker2")
        stack.wait_worker_ready("worker2")
        still = http.get(f"/v1/jobs/{job_id}").json()
        assert still["phase"] == "downloading", f"the download ended before the stop: {still}"
        # When the first worker is asked to stop
        asked = time.monotonic()
        stack.stop("worker", signal.SIGTERM)
        stopped_in = time.monotonic() - asked
        # Then it stops promptly, and the other worker finishes the job without spending an attempt
        job = wait_status(http, job_id, TERMINAL)
        stack.stop("worker2")
        stack.start_worker()
        assert stopped_in < 10, f"the worker took {stopped_in:.1f} s to stop"
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 1
        assert download_outcomes(http, job_id) == ["handed_back", "succeeded"]
    assert_invariants(stack)


def test_a_job_that_kills_its_worker_every_time_ends_failed(
    stack: Stack, media: MediaServer
) -> None:
    """RabbitMQ redelivers a killed worker's message without Dramatiq counting a retry;
    the attempt count in the row is what stops the loop."""
    max_attempts = int(STACK_ENV["HAUL_MAX_RETRIES"]) + 1
    with stack.http() as http:
        job_id = submit(http, media.url("/slow/long.mp4?bps=100000"))
        for attempt in range(1, max_attempts + 1):
            # Given the download under way in its n-th attempt
            wait_downloading(http, job_id, attempt=attempt)
            # When its worker dies, and the sweep runs once the lease has expired
            stack.stop("worker", signal.SIGKILL)
            stack.start_worker()
            wait_lease_expired(stack, job_id)
            stack.start_scheduler()
            try:

                def taken_back(n: int = attempt) -> bool:
                    job = http.get(f"/v1/jobs/{job_id}").json()
                    return job["status"] != "running" or job["attempts"] > n

                wait_for(taken_back, timeout=20, what="the sweep to take the job back")
            finally:
                stack.stop("scheduler")
        # Then after its last attempt the job fails, and is not run again
        job = wait_status(http, job_id, TERMINAL)
        assert job["status"] == "failed"
        assert job["error"]["error_class"] == "attempts_exhausted"
        assert f"gave up after {max_attempts} attempts" in job["error"]["message"]
        assert job["attempts"] == max_attempts
    assert_invariants(stack)


def test_a_throttling_site_is_retried_after_the_longer_rate_limit_delay(
    stack: Stack, media: MediaServer
) -> None:
    with stack.http() as http:
        # Given a site that answers 429 Too Many Requests
        job_id = submit(http, media.url("/status/429"))

        # When the first attempt fails, the row says when the next is due
        def scheduled() -> dict[str, object] | None:
            job: dict[str, object] = http.get(f"/v1/jobs/{job_id}").json()
            return job if job["status"] == "retrying" and job["next_attempt_at"] else None

        job = wait_for(scheduled, timeout=20, what="the retry to be scheduled")
        # Then it waits the rate-limit delay, not the ordinary backoff
        due = datetime.fromisoformat(str(job["next_attempt_at"]))
        written = datetime.fromisoformat(str(job["updated_at"]))
        assert (due - written).total_seconds() == pytest.approx(3.0, abs=0.1)
        assert str(job["last_error"]).startswith("rate_limited")


def test_a_source_that_fails_twice_is_retried_with_backoff_and_succeeds(
    stack: Stack, media: MediaServer
) -> None:
    with stack.http() as http:
        # Given a file whose server answers the probe, then 503 four times, then works: the
        # first download (from the probe's extraction) fails its three tries (yt-dlp's own
        # two retries), the second attempt's fresh extraction gets the fourth 503 (a 503 is
        # not a reason to extract again at once), the third attempt gets the file
        key = uuid.uuid4().hex
        job_id = submit(http, media.url(f"/flaky/{key}/clip.mp4?after=1&fail=4"))
        # When the job runs
        job = wait_status(http, job_id, TERMINAL)
        # Then it succeeded on its third download attempt
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 3
        attempts = [
            a
            for a in http.get(f"/v1/jobs/{job_id}/attempts").json()["items"]
            if a["step"] == "download"
        ]
        assert [a["outcome"] for a in attempts] == ["retry", "retry", "succeeded"]
        # and each retry waited at least the lower bound of its backoff (half of 1 s, then 2 s)
        gaps = [
            datetime.fromisoformat(later["started_at"])
            - datetime.fromisoformat(earlier["finished_at"])
            for earlier, later in itertools.pairwise(attempts)
        ]
        assert gaps[0].total_seconds() >= 0.5, gaps
        assert gaps[1].total_seconds() >= 1.0, gaps
    assert_invariants(stack)


def test_a_missing_file_fails_after_one_attempt_and_is_dead_lettered(
    stack: Stack, media: MediaServer
) -> None:
    with stack.http() as http:
        # Given a URL that answers 404
        job_id = submit(http, media.url("/missing.mp4"))
        # When the job runs
        job = wait_status(http, job_id, TERMINAL)
        # Then it failed at once with the reason, without a retry
        assert job["status"] == "failed"
        assert job["error"]["error_class"] == "http_404"
        assert job["attempts"] == 1
        # and its message went to the dead-letter queue, which the row records
        wait_for(
            lambda: job_id in dead_letter_job_ids(f"{stack.queue_prefix}.probe.XQ"),
            timeout=10,
            what="the message in .XQ",
        )
        job = wait_for(
            lambda: (j := http.get(f"/v1/jobs/{job_id}").json())["dead_lettered_at"] and j,
            timeout=10,
            what="the row to record the dead letter",
        )
        assert job["error"]["error_class"] == "http_404"  # the middleware kept the reason
    assert_invariants(stack)


def test_a_cancelled_queued_job_never_starts_when_its_message_arrives(
    stack: Stack, media: MediaServer
) -> None:
    with stack.http() as http:
        # Given a job queued while no worker runs, then cancelled
        stack.stop("worker")
        job_id = submit(http, media.url("/media/clip.mp4"))
        assert http.post(f"/v1/jobs/{job_id}/cancel").json()["status"] == "cancelled"
        # When a worker starts and its message arrives
        stack.start_worker()

        def dropped() -> bool:
            return any(
                job_id in line and "message dropped" in line
                for line in stack.log("worker").splitlines()
            )

        wait_for(dropped, timeout=30, what="the message to be dropped")
        # Then the job never ran
        job = http.get(f"/v1/jobs/{job_id}").json()
        assert job["status"] == "cancelled"
        assert job["attempts"] == 0
        assert http.get(f"/v1/jobs/{job_id}/attempts").json()["items"] == []
    assert_invariants(stack)


def test_sweeps_catch_up_on_what_piled_up_while_the_scheduler_was_down(
    stack: Stack, media: MediaServer
) -> None:
    """The sweeps look at state, not at ticks: whatever is overdue, the first run repairs."""
    with stack.http() as http:
        # Given, with no scheduler running: a download whose worker died...
        dead = submit(http, media.url("/slow/long.mp4?bps=150000"))
        wait_downloading(http, dead)
        stack.stop("worker", signal.SIGKILL)
        # ...and a job queued while no worker ran; then the broker loses both messages
        lost = submit(http, media.url("/media/clip.mp4"))
        download_queue, probe_queue = (f"{stack.queue_prefix}.{q}" for q in ("download", "probe"))
        wait_for(
            lambda: ready(download_queue) == 1 and ready(probe_queue) == 1,
            timeout=10,
            what="the dead worker's message back in its queue, and the new one queued",
        )
        purge(download_queue)
        purge(probe_queue)
        # both overdue by ten minutes, as if the scheduler had missed ten ticks
        stack.query(
            "UPDATE jobs SET lease_expires_at = now() - interval '10 minutes' WHERE id = %s "
            "RETURNING id",
            uuid.UUID(dead),
        )
        stack.query(
            "UPDATE jobs SET queued_at = now() - interval '10 minutes', "
            "published_at = now() - interval '10 minutes' WHERE id = %s RETURNING id",
            uuid.UUID(lost),
        )
        stack.start_worker()
        # When the scheduler comes back
        sweeps_before = stack.log("worker").count('"event": "sweep"')
        stack.start_scheduler()
        try:
            wait_for(
                lambda: stack.log("worker").count('"event": "sweep"') > sweeps_before,
                timeout=30,
                what="the first sweep",
            )
            # Then its first sweep requeues the dead worker's job and rings the lost doorbell
            first = [
                line for line in stack.log("worker").splitlines() if '"event": "sweep"' in line
            ][sweeps_before]
            assert '"requeued": 1' in first and '"republished": 1' in first, first
            # and both jobs succeed
            for job_id in (dead, lost):
                assert wait_status(http, job_id, TERMINAL)["status"] == "succeeded"
        finally:
            stack.stop("scheduler")
    assert_invariants(stack)
