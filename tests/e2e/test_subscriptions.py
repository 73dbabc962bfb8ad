"""A subscription with real processes: the API, a worker and the periodiq scheduler
follow a local feed that grows, and download its new entry exactly once; what a check
finds reaches the client's live stream, its webhook receiver and the worker's metrics."""

from __future__ import annotations

import json
import threading
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.integration.subscriptions.test_check import item
from tests.support.prom import Samples, delta, samples
from tests.support.receiver import Received, Receiver
from tests.support.sse import Event, events
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    from tests.support.media_server import MediaServer
    from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


def shown(http: httpx.Client, sub_id: str) -> dict[str, Any]:
    return dict(http.get(f"/v1/subscriptions/{sub_id}").json())


def checked_after(http: httpx.Client, sub_id: str, before: str | None) -> dict[str, Any]:
    """Until a check newer than ``before`` is recorded on the subscription."""
    return wait_for(
        lambda: (s := shown(http, sub_id))["last_check"]["at"] not in (None, before) and s,
        timeout=60,
        what="a check of the subscription",
    )


def test_the_scheduler_checks_a_due_feed_and_its_new_entry_downloads_once(
    stack: Stack, media: MediaServer
) -> None:
    key = uuid.uuid4().hex[:12]
    url = media.set_feed(key, [item(2), item(1)])
    with stack.http() as http:
        # Given a subscription whose first check (rung at creation) saw two episodes
        created = http.post("/v1/subscriptions", json={"url": url})
        assert created.status_code == 201, created.text
        sub_id = created.json()["id"]
        first = checked_after(http, sub_id, None)
        assert first["last_check"]["outcome"] == "ok"
        assert first["entries_seen"] == 2

        # When the feed gains an episode, the subscription falls due and the scheduler starts
        media.set_feed(key, [item(3), item(2), item(1)])
        stack.query(
            "UPDATE subscriptions SET next_check_at = now() - interval '1 hour' "
            "WHERE id = %s RETURNING id",
            uuid.UUID(sub_id),
        )
        stack.start_scheduler()
        try:
            second = checked_after(http, sub_id, first["last_check"]["at"])
            # Then the new episode's job downloads
            done = wait_for(
                lambda: (s := shown(http, sub_id))["jobs"].get("succeeded") == 1 and s,
                timeout=90,
                what="the new episode's job to succeed",
            )
        finally:
            stack.stop("scheduler")

        # When it is checked once more, by hand
        assert http.post(f"/v1/subscriptions/{sub_id}/check").status_code == 202
        checked_after(http, sub_id, second["last_check"]["at"])

        # Then there is still exactly one job, and the entries say why the others have none
        jobs = http.get("/v1/jobs").json()["items"]
        assert [j["url"].rsplit("=", 1)[-1] for j in jobs] == ["3"]
        assert done["entries_seen"] == 3
        states = {
            e["key"]: e["state"]
            for e in http.get(f"/v1/subscriptions/{sub_id}/entries").json()["items"]
        }
        assert states == {
            "guid:episode-3": "queued",
            "guid:episode-2": "before_backfill",
            "guid:episode-1": "before_backfill",
        }


def test_a_check_reaches_the_live_stream_the_webhook_receiver_and_the_metrics(
    stack: Stack, media: MediaServer
) -> None:
    key, secret = stack.create_client("subscriber")
    with Receiver() as hooks, stack.http(key) as http:
        hooks.trust(secret)
        before = samples(wait_for(stack.worker_metrics, timeout=30, what="worker metrics"))
        # Given a client watching its live stream, and a subscription with a callback URL
        # whose first check saw one episode
        seen: list[Event] = []
        opened = threading.Event()

        def watch() -> None:
            timeout = httpx.Timeout(10, read=120)
            with (
                httpx.Client(base_url=stack.base_url, timeout=timeout) as sse,
                sse.stream(
                    "GET", "/v1/events", headers={"Authorization": f"Bearer {key}"}
                ) as response,
            ):
                opened.set()
                for event in events(response):
                    seen.append(event)
                    if event.data.get("event") == "subscription.entries_found":
                        return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        assert opened.wait(10), "the live stream did not open"
        feed_key = uuid.uuid4().hex[:12]
        url = media.set_feed(feed_key, [item(1)])
        created = http.post("/v1/subscriptions", json={"url": url, "callback_url": hooks.url("/s")})
        assert created.status_code == 201, created.text
        sub_id = created.json()["id"]
        first = checked_after(http, sub_id, None)

        # When the feed gains an episode and a check is asked for
        media.set_feed(feed_key, [item(2), item(1)])
        assert http.post(f"/v1/subscriptions/{sub_id}/check").status_code == 202
        checked_after(http, sub_id, first["last_check"]["at"])

        # Then the stream showed the new entry, as a subscription event
        watcher.join(timeout=60)
        (live,) = [e for e in seen if e.kind == "subscription"]
        assert (live.id, live.data["subscription_id"], live.data["new"]) == (None, sub_id, 1)

        # and the receiver got it once, signed with the client's secret (the entry's job
        # reports its own end to the same URL, as any job with a callback does)
        def about_subscription() -> list[Received]:
            return [r for r in hooks.at("/s") if b'"type":"subscription.' in r.body]

        got = wait_for(about_subscription, timeout=60, what="the subscription's webhook")
        assert [r.verified_by for r in got] == [secret]
        event = json.loads(got[0].body)
        assert event["type"] == "subscription.entries_found"
        assert [e["key"] for e in event["data"]["entries"]] == ["guid:episode-2"]

        # and the worker counted two ok checks, the entries they found and their lag
        def counted() -> Samples | None:
            after = samples(stack.worker_metrics() or "")
            done = delta(before, after, "haul_subscription_checks_total", outcome="ok") >= 2
            return after if done else None

        after = wait_for(counted, timeout=30, what="the checks in the worker's metrics")
        assert delta(before, after, "haul_subscription_entries_found_total") >= 2
        assert delta(before, after, "haul_subscription_check_lag_seconds_count") >= 2
