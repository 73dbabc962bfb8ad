"""A subscription with real processes: the API, a worker and the periodiq scheduler
follow a local feed that grows, and download its new entry exactly once."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest

from tests.integration.subscriptions.test_check import item
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    import httpx

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
