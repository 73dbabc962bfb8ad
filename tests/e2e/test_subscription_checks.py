"""A subscription's check is a job, with real processes: a check that fails is retried with
backoff and its attempts show on its job; a check whose worker is killed mid-listing is
swept once its lease expires and runs again; the client's webhook hears of no check."""

from __future__ import annotations

import itertools
import json
import signal
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pytest

from tests.integration.subscriptions.test_check import item
from tests.support.receiver import Receiver
from tests.support.stack import TERMINAL, assert_invariants, wait_lease_expired, wait_status
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    import httpx

    from tests.support.media_server import MediaServer
    from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

#: A short lease, so a dead worker's check is recovered within seconds; two retries.
STACK_ENV = {
    "HAUL_LEASE_S": "5",
    "HAUL_MAX_RETRIES": "2",
    # Retries wait 0.5-1 s, then 1-2 s (Dramatiq's exponential backoff with jitter).
    "HAUL_MIN_BACKOFF_MS": "1000",
    "HAUL_MAX_BACKOFF_MS": "4000",
}


def subscribe(http: httpx.Client, url: str, **body: Any) -> dict[str, Any]:
    created = http.post("/v1/subscriptions", json={"url": url, **body})
    assert created.status_code == 201, created.text
    return dict(created.json())


def attempts_of(http: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    return list(http.get(f"/v1/jobs/{job_id}/attempts").json()["items"])


def test_a_check_that_fails_is_retried_with_backoff_and_its_attempts_show_on_its_job(
    stack: Stack, media: MediaServer
) -> None:
    key, secret = stack.create_client("checker")
    with Receiver() as hooks, stack.http(key) as http:
        hooks.trust(secret)
        assert http.put("/v1/webhook", json={"url": hooks.url("/all")}).is_success
        # Given a feed whose server answers 503 twice, then serves it
        feed_key = uuid.uuid4().hex[:12]
        url = media.set_feed(feed_key, [item(1)])
        media.fail_feed(feed_key, 2)

        # When a subscription to it is made (its first check runs at once)
        sub = subscribe(http, url)
        check = wait_status(http, sub["check"]["id"], TERMINAL)

        # Then the check job succeeded on its third attempt, after two retries with backoff
        assert (check["kind"], check["status"], check["attempts"]) == ("check", "succeeded", 3)
        attempts = attempts_of(http, check["id"])
        assert [a["outcome"] for a in attempts] == ["retry", "retry", "succeeded"]
        assert all(a["error_class"] == "http_5xx" for a in attempts[:2]), attempts
        gaps = [
            datetime.fromisoformat(later["started_at"])
            - datetime.fromisoformat(earlier["finished_at"])
            for earlier, later in itertools.pairwise(attempts)
        ]
        assert gaps[0].total_seconds() >= 0.5, gaps
        assert gaps[1].total_seconds() >= 1.0, gaps
        # and the subscription counts one good check, no failure
        shown = http.get(f"/v1/subscriptions/{sub['id']}").json()
        assert (shown["last_check"]["outcome"], shown["consecutive_failures"]) == ("ok", 0)
        # and the job list shows it only when asked for checks
        assert http.get("/v1/jobs").json()["items"] == []
        assert [j["id"] for j in http.get("/v1/jobs?kind=check").json()["items"]] == [check["id"]]
        # and its end made no webhook delivery, while a download's end reaches the endpoint
        assert (
            stack.query(
                "SELECT id FROM webhook_deliveries WHERE job_id = %s", uuid.UUID(check["id"])
            )
            == []
        )
        resp = http.post("/v1/jobs", json={"url": media.url("/gone.mp4")})
        assert resp.status_code == 202, resp.text
        wait_for(lambda: hooks.at("/all"), timeout=60, what="the download's webhook")
        heard = [json.loads(r.body)["data"]["id"] for r in hooks.at("/all")]
        assert heard == [resp.json()["id"]]
    assert_invariants(stack)


def test_a_check_whose_worker_is_killed_is_swept_and_runs_again(
    stack: Stack, media: MediaServer
) -> None:
    with stack.http() as http:
        # Given a check under way: its feed holds the worker's request
        feed_key = uuid.uuid4().hex[:12]
        url = media.set_feed(feed_key, [item(2), item(1)])
        media.stall_feed(feed_key, 60)
        sub = subscribe(http, url)
        check_id = sub["check"]["id"]
        wait_for(
            lambda: media.hits(f"/feed-live/{feed_key}.rss", "GET") == 1,
            timeout=30,
            what="the check to ask for the feed",
        )
        assert http.get(f"/v1/jobs/{check_id}").json()["status"] == "running"

        # When its worker is killed outright, a new one starts and the lease runs out
        stack.stop("worker", signal.SIGKILL)
        stack.start_worker()
        wait_lease_expired(stack, check_id)
        stack.start_scheduler()
        try:
            # Then the sweep hands the check to the new worker, which lists the feed
            done = wait_status(http, check_id, TERMINAL)
        finally:
            stack.stop("scheduler")
        assert (done["status"], done["attempts"]) == ("succeeded", 2)
        assert [a["outcome"] for a in attempts_of(http, check_id)] == ["abandoned", "succeeded"]
        shown = http.get(f"/v1/subscriptions/{sub['id']}").json()
        assert (shown["last_check"]["outcome"], shown["entries_seen"]) == ("ok", 2)
    assert_invariants(stack)
