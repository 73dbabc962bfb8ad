"""A site that fights back, with real processes: a local server that starts answering 429
after a few requests opens its site's breaker; that site's other jobs wait
(``site_cooling``) without failing or spending attempts while another site's jobs keep
flowing; once the server recovers, a trial goes through, the breaker closes and every
job succeeds. An admin with a default webhook endpoint hears each opening and the
closing as signed ``site.breaker_opened`` / ``site.breaker_closed`` webhooks.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.support.media_server import MediaServer
from tests.support.network import TEST_EGRESS_ALLOW
from tests.support.prom import samples
from tests.support.receiver import Receiver
from tests.support.stack import submit, wait_status
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

OTHER_HOST = "127.0.0.4"
STACK_ENV = {
    "HAUL_EGRESS_ALLOW": f"{TEST_EGRESS_ALLOW},{OTHER_HOST}/32",
    "HAUL_BREAKER_THRESHOLD": "2",
    "HAUL_BREAKER_COOLDOWN_S": "3",
    "HAUL_RATE_LIMITED_BACKOFF_MS": "300",
    # Dramatiq's retries of one message: room for the trials of a long throttle.
    "HAUL_MAX_RETRIES": "6",
}
BUSY = "127.0.0.1"


@pytest.fixture(scope="module")
def other_site(media_dir: Path) -> Iterator[MediaServer]:
    with MediaServer(media_dir, host=OTHER_HOST) as server:
        yield server


def guest_breaker(admin: httpx.Client, site: str) -> dict[str, Any] | None:
    answer = admin.get(f"/v1/sites/{site}")
    answer.raise_for_status()
    breakers = [b for b in answer.json()["breakers"] if b["identity"] == "guest"]
    return breakers[0] if breakers else None


def jobs_of(stack: Stack, ids: list[str]) -> dict[str, tuple[str, str | None, int, int]]:
    """Per job: status, held, attempts of the current step, attempts rows over all steps."""
    rows = stack.query(
        "SELECT j.id, j.status, j.held, j.attempts, "
        "(SELECT count(*) FROM job_attempts a WHERE a.job_id = j.id) FROM jobs j "
        "WHERE j.id = ANY(%s)",
        [uuid.UUID(i) for i in ids],
    )
    return {str(r[0]): (r[1], r[2], r[3], r[4]) for r in rows}


def test_a_throttling_site_cools_alone_and_every_job_succeeds_after_it_recovers(
    stack: Stack,
    media: MediaServer,
    other_site: MediaServer,
    admin: httpx.Client,
    hooks: Receiver,
) -> None:
    # Given an admin whose default webhook endpoint is a receiver that trusts its secret
    _, secret = stack.create_client("watch", "--admin", "--callback-url", hooks.url("/breaker"))
    hooks.trust(secret)
    # and a site that serves 3 more GETs, then answers 429 to everyone
    media.throttle_after(3)
    try:
        with stack.http() as http:
            busy = [submit(http, media.url(f"/busy/a.mp4?n={n}")) for n in range(8)]

            # When its attempts are throttled: the breaker opens after two in a row
            wait_for(
                lambda: (guest_breaker(admin, BUSY) or {}).get("state") == "open",
                timeout=60,
                what="the busy site's breaker to open",
            )
            wait_for(
                lambda: any(h == "site_cooling" for _, h, _, _ in jobs_of(stack, busy).values()),
                timeout=60,
                what="a job held site_cooling",
            )
            breaker = guest_breaker(admin, BUSY)
            assert breaker is not None and breaker["retry_at"] is not None
            assert "rate_limited" in (breaker["reason"] or "")
            found = samples(http.get("/metrics").text)
            breakers = {k: v for k, v in found.items() if k[0].startswith("haul_site_breaker")}
            state = ("haul_site_breaker_state", (("identity", "guest"), ("site", BUSY)))
            assert any(
                k[0] == state[0] and set(state[1]) <= set(k[1]) and ("state", "closed") not in k[1]
                for k in breakers
            ), breakers

            # Then another site's jobs keep flowing meanwhile
            others = [submit(http, other_site.url(f"/media/b.mp4?n={n}")) for n in range(4)]
            for job_id in others:
                job = wait_status(http, job_id, {"succeeded", "failed"}, timeout=90)
                assert job["status"] == "succeeded", job

            # ... and the busy site's jobs wait without failing or spending attempts: held
            # jobs keep their count while trials fail and the breaker opens again
            before = jobs_of(stack, busy)
            opens = (guest_breaker(admin, BUSY) or {}).get("opens", 0)
            waiting = {i for i, (_, held, _, _) in before.items() if held == "site_cooling"}
            wait_for(
                lambda: (guest_breaker(admin, BUSY) or {}).get("opens", 0) > opens,
                timeout=60,
                what="a failed trial to open the breaker again",
            )
            after = jobs_of(stack, busy)
            assert all(status != "failed" for status, _, _, _ in after.values()), after
            still = [i for i in waiting if after[i][1] == "site_cooling"]
            assert still, "no job stayed held through a trial"
            assert all(after[i][3] == before[i][3] for i in still), (before, after)

        # When the site recovers
        media.throttle_after(None)

        # Then every job succeeds and the breaker is closed
        with stack.http() as http:
            for job_id in busy:
                job = wait_status(http, job_id, {"succeeded", "failed", "cancelled"}, timeout=120)
                assert job["status"] == "succeeded", job
        closed = guest_breaker(admin, BUSY)
        assert closed is None or closed["state"] == "closed"
        # and the admin's endpoint heard every opening, then the closing, each signed
        wait_for(
            lambda: any(b"site.breaker_closed" in r.body for r in hooks.at("/breaker")),
            timeout=30,
            what="the breaker_closed webhook",
        )
        got = hooks.at("/breaker")
        assert all(r.verified_by == secret for r in got)
        events = sorted((json.loads(r.body) for r in got), key=lambda e: e["timestamp"])
        types = [e["type"] for e in events]
        assert types[-1] == "site.breaker_closed", types
        assert set(types[:-1]) == {"site.breaker_opened"} and len(types) >= 3, types
        assert {(e["data"]["site"], e["data"]["identity"]) for e in events} == {(BUSY, "guest")}
        assert [e["data"]["opens"] for e in events[:-1]] == list(range(1, len(events)))
        assert events[-1]["data"]["state"] == "closed"
        # Jobs the breaker held waited instead of trying: fewer throttled attempts than jobs
        # (only those in flight when it opened, and the trials, met the 429).
        throttled = stack.query(
            "SELECT count(*) FROM job_attempts WHERE job_id = ANY(%s) AND outcome = 'retry'",
            [uuid.UUID(i) for i in busy],
        )[0][0]
        assert throttled < len(busy), f"{throttled} throttled attempts for {len(busy)} jobs"
    finally:
        media.throttle_after(None)
        admin.post(f"/v1/sites/{BUSY}/reset")
