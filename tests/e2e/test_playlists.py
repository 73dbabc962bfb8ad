"""Playlist trees with real processes: a feed whose entries behave differently, cancelled
mid-way, and retried after an entry failed.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import pytest

from tests.support.sse import events
from tests.support.stack import (
    TERMINAL,
    assert_invariants,
    download_outcomes,
    submit,
    wait_downloading,
    wait_status,
)
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    import httpx

    from tests.support.media_server import MediaServer
    from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

#: A running entry moves its playlist's progress every half second at most.
STACK_ENV = {"HAUL_PLAYLIST_PROGRESS_S": "0.5"}


def feed_of(media: MediaServer, *paths: str) -> str:
    """A feed with one entry per media-server path."""
    return media.url("/feed-of.rss?" + urlencode([("entry", p) for p in paths]))


def entries(http: httpx.Client, parent_id: str) -> dict[str, dict[str, Any]]:
    """The parent's entries by the path of their URL."""
    items = http.get("/v1/jobs", params={"parent_id": parent_id}).json()["items"]
    return {item["url"].split("/", 3)[-1]: item for item in items}


def wait_entries(http: httpx.Client, parent_id: str, count: int) -> dict[str, dict[str, Any]]:
    return wait_for(
        lambda: (found := entries(http, parent_id)) and len(found) == count and found,
        timeout=30,
        what=f"the playlist's {count} entries",
    )


def test_cancelling_a_playlist_mid_way_stops_what_runs_and_keeps_what_is_done(
    stack: Stack, media: MediaServer
) -> None:
    with stack.http() as http:
        # Given a playlist with a quick entry, a missing one and one that trickles in
        parent_id = submit(
            http, feed_of(media, "/media/a.mp4", "/missing.mp4", "/slow/long.mp4?bps=60000")
        )
        found = wait_entries(http, parent_id, 3)
        quick, missing, slow = (
            found["media/a.mp4"]["id"],
            found["missing.mp4"]["id"],
            found["slow/long.mp4?bps=60000"]["id"],
        )
        # and the quick one done, the missing one failed, the slow one under way
        done = wait_status(http, quick, TERMINAL)
        assert done["status"] == "succeeded", done
        assert wait_status(http, missing, TERMINAL)["status"] == "failed"
        wait_downloading(http, slow)
        waiting = http.get(f"/v1/jobs/{parent_id}").json()
        assert (waiting["status"], waiting["phase"]) == ("running", "awaiting_children")
        assert 2 / 3 < waiting["children"]["progress"] < 1
        # When its owner cancels the playlist
        response = http.post(f"/v1/jobs/{parent_id}/cancel")
        # Then it is cancelled at once, and so is the running entry
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "cancelled"
        assert http.get(f"/v1/jobs/{slow}").json()["status"] == "cancelled"
        # whose worker stops at its next heartbeat, leaving no file behind
        wait_for(
            lambda: download_outcomes(http, slow)[-1:] == ["abandoned"],
            timeout=10,
            what="the slow entry's worker to stop",
        )
        assert not list(stack.temp.glob(f"{slow}-*"))
        assert not list(stack.storage.glob(f"*/{slow}/*"))
        # and the entries that had ended stay as they were, the finished one with its file
        assert http.get(f"/v1/jobs/{missing}").json()["status"] == "failed"
        kept = http.get(f"/v1/jobs/{quick}").json()
        assert (kept["status"], kept["file"]) == ("succeeded", done["file"])
        assert http.get(f"/v1/jobs/{quick}/file").status_code == 200
        # and the playlist says how it ended
        parent = http.get(f"/v1/jobs/{parent_id}").json()
        assert parent["status"] == "cancelled"
        counts = parent["children"]
        assert (counts["succeeded"], counts["failed"], counts["cancelled"]) == (1, 1, 1)
        assert (counts["total"], counts["progress"]) == (3, 1.0)
    assert_invariants(stack)


def test_retrying_a_playlist_after_an_entry_failed_runs_only_that_entry_again(
    stack: Stack, media: MediaServer
) -> None:
    with stack.http() as http:
        # Given a playlist whose second entry's site fails long enough to use up its retries
        flaky = f"/flaky/{uuid.uuid4().hex}/c.mp4?fail=2"
        parent_id = submit(http, feed_of(media, "/media/b.mp4", flaky))
        failed = wait_status(http, parent_id, TERMINAL)
        assert failed["status"] == "failed", failed
        assert failed["error"] == {
            "error_class": "children_failed",
            "message": "1 of 2 entries failed",
        }
        found = entries(http, parent_id)
        good, bad = found["media/b.mp4"], found[flaky.lstrip("/")]
        assert bad["status"] == "failed" and bad["dead_lettered_at"] is not None
        # When its owner retries the playlist, once the site recovered
        response = http.post(f"/v1/jobs/{parent_id}/retry")
        # Then it waits for its failed entry again, not probed again
        assert response.status_code == 202, response.text
        assert (response.json()["status"], response.json()["phase"]) == (
            "running",
            "awaiting_children",
        )
        # and ends succeeded once the entry, with a fresh budget, got its file
        parent = wait_status(http, parent_id, TERMINAL)
        assert parent["status"] == "succeeded", parent
        assert parent["error"] is None
        assert (parent["children"]["succeeded"], parent["children"]["progress"]) == (2, 1.0)
        again = http.get(f"/v1/jobs/{bad['id']}").json()
        assert again["status"] == "succeeded" and again["file"] is not None
        # (the last try of a transient failure is a retry the dead letter ended)
        assert download_outcomes(http, bad["id"]) == ["retry", "retry", "succeeded"]
        # while the entry that had succeeded was left alone
        assert download_outcomes(http, good["id"]) == ["succeeded"]
        assert http.get(f"/v1/jobs/{good['id']}").json()["file"] == good["file"]
        # and the probe ran once
        attempts = http.get(f"/v1/jobs/{parent_id}/attempts").json()["items"]
        assert [a["step"] for a in attempts] == ["probe"]
    # and every state change of the parent is on record, the reopening included
    changes = stack.query(
        "SELECT status, phase FROM job_events WHERE job_id = %s ORDER BY id", uuid.UUID(parent_id)
    )
    assert changes[-4:] == [
        ("running", "awaiting_children"),
        ("failed", None),
        ("running", "awaiting_children"),
        ("succeeded", None),
    ]
    assert_invariants(stack)


def test_a_watcher_of_a_playlist_sees_its_own_progress_rise_before_it_ends(
    stack: Stack, media: MediaServer
) -> None:
    with stack.http() as http:
        # Given a playlist with a quick entry and one that takes a few seconds
        parent_id = submit(http, feed_of(media, "/media/a.mp4", "/slow/long.mp4?bps=150000"))
        # When its owner watches the playlist itself (not its entries)
        with http.stream("GET", f"/v1/jobs/{parent_id}/events", timeout=30) as response:
            assert response.status_code == 200, response.read()
            seen = [e for e in events(response) if e.kind is not None]
    # Then the parent's own progress rose while it ran, then it ended
    fractions = [e.data["progress"] for e in seen if e.kind == "progress" and e.data["progress"]]
    assert seen[-1].kind == "state" and seen[-1].data["status"] == "succeeded", seen
    assert len({f for f in fractions if 0 < f < 1}) >= 2, seen
    assert fractions == sorted(fractions), fractions
    assert_invariants(stack)
