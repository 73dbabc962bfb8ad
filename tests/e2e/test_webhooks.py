"""Webhooks end to end: the API (uvicorn) and a worker (`dramatiq actors`) as real
processes; a local receiver verifies every request with the ``standardwebhooks``
reference library, using the secret `haul clients create` printed.
"""

from __future__ import annotations

import itertools
import json
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.receiver import Receiver
from tests.support.stack import TERMINAL, Stack, submit, wait_status
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    import httpx

    from tests.support.media_server import MediaServer

pytestmark = pytest.mark.e2e

MIN_BACKOFF_MS = 300
MAX_ATTEMPTS = 4
STACK_ENV = {
    "HAUL_WEBHOOK_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
    "HAUL_WEBHOOK_MIN_BACKOFF_MS": str(MIN_BACKOFF_MS),
    "HAUL_WEBHOOK_MAX_BACKOFF_MS": "1000",
    "HAUL_WEBHOOK_TIMEOUT_S": "3",
}


def wait_callback(http: httpx.Client, job_id: str, status: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        job: dict[str, Any] = http.get(f"/v1/jobs/{job_id}").json()
        return job if job["callback_status"] == status else None

    return wait_for(reached, timeout=60, what=f"job {job_id}'s callback to be {status}")


def test_a_finished_download_is_delivered_on_attempt_four_after_three_failures(
    stack: Stack, media: MediaServer, hooks: Receiver
) -> None:
    # Given a client made with the CLI, and a receiver that trusts the secret it printed
    key, secret = stack.create_client("hooked")
    hooks.trust(secret)
    # and that answers 500, 502 and 503 before it accepts
    hooks.answer("/downloads", 500, 502, 503, then=200)
    with stack.http(key) as http:
        # When a job with that callback URL downloads a real file
        job_id = submit(http, media.url("/media/clip.mp4"), callback_url=hooks.url("/downloads"))
        job = wait_status(http, job_id, TERMINAL)
        assert job["status"] == "succeeded", job
        # Then the job's callback is delivered, on the fourth attempt
        done = wait_callback(http, job_id, "delivered")
        got = hooks.at("/downloads")
        assert [r.answered for r in got] == [500, 502, 503, 200]
        # every attempt signed validly, all under the one webhook-id, with the same body
        assert all(r.verified_by == secret for r in got)
        (delivery,) = http.get(f"/v1/jobs/{job_id}/deliveries").json()["items"]
        assert {r.webhook_id for r in got} == {delivery["id"]}
        assert len({r.body for r in got}) == 1
        # spaced by at least the backoff (each wait at least its lower bound)
        gaps = [b.at - a.at for a, b in itertools.pairwise(got)]
        floors = [min(MIN_BACKOFF_MS * 2**n, 1000) / 1000 for n in range(3)]
        assert all(gap >= floor for gap, floor in zip(gaps, floors, strict=True)), gaps
        # and the event is the job as the API shows it, with its file's link
        event = json.loads(got[-1].body)
        assert event["type"] == "job.succeeded"
        assert event["data"]["id"] == job_id
        assert event["data"]["file"]["url"] == f"/v1/jobs/{job_id}/file"
        assert event["data"]["file"]["sha256"] == done["file"]["sha256"]
        assert [a["status_code"] for a in delivery["attempts"]] == [500, 502, 503, 200]
        assert delivery["status"] == "delivered"


def test_a_receiver_that_always_fails_leaves_the_callback_failed_and_the_job_as_it_ended(
    stack: Stack, media: MediaServer, hooks: Receiver
) -> None:
    # Given a client whose default endpoint (set by the CLI) always answers 503
    key, secret = stack.create_client("unlucky", "--callback-url", hooks.url("/broken"))
    hooks.trust(secret)
    hooks.answer("/broken", then=503)
    with stack.http(key) as http:
        # When one of its jobs fails for good (the source is missing)
        job_id = submit(http, media.url("/status/404"))
        ended = wait_status(http, job_id, TERMINAL)
        assert ended["status"] == "failed", ended
        # Then the callback ends failed after every attempt was made
        job = wait_callback(http, job_id, "failed")
        assert len(hooks.at("/broken")) == MAX_ATTEMPTS
        assert all(r.verified_by == secret for r in hooks.at("/broken"))
        assert json.loads(hooks.at("/broken")[0].body)["type"] == "job.failed"
        (delivery,) = http.get(f"/v1/jobs/{job_id}/deliveries").json()["items"]
        assert delivery["from_default"] is True
        assert delivery["last_error"] == "HTTP 503"
        assert [a["outcome"] for a in delivery["attempts"]] == ["retry"] * 3 + ["failed"]
        # and the job itself still says what it said when it ended
        for field in ("status", "error", "finished_at", "attempts"):
            assert job[field] == ended[field], field
