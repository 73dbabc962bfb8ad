"""A tarpit webhook receiver slows only deliveries: the download workers consume every
queue but callbacks and the deliveries run in a process of their own (as `just run`
and compose start them, with the queue names `haul queues` prints), so downloads keep
starting and finishing while every delivery thread is stuck on the receiver.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from tests.support.stack import TERMINAL, Stack, submit, wait_status
from tests.support.tarpit import Tarpit
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    from tests.support.media_server import MediaServer

pytestmark = pytest.mark.e2e

#: Deliveries never give up during the test, and retry at once, so they stay stuck.
STACK_ENV = {
    "HAUL_WEBHOOK_TIMEOUT_S": "3",
    "HAUL_WEBHOOK_MAX_ATTEMPTS": "100",
    "HAUL_WEBHOOK_MIN_BACKOFF_MS": "100",
    "HAUL_WEBHOOK_MAX_BACKOFF_MS": "200",
}
#: Jobs submitted while every delivery thread is held.
JOBS = 16
#: Their downloads take a few seconds on a loaded 2-core machine; a worker whose threads
#: were held by the tarpit would need several times this.
BUDGET_S = 45


def test_downloads_keep_finishing_while_every_delivery_is_stuck_in_a_tarpit(
    stack: Stack, media: MediaServer
) -> None:
    # Given the download worker on every queue but callbacks, the deliveries on those only
    stack.stop("worker")
    stack.start_worker("worker", queues=stack.queues("--except", "callbacks"))
    stack.start_worker("deliveries", queues=stack.queues("--only", "callbacks"))
    stack.wait_worker_ready("worker")
    stack.wait_worker_ready("deliveries")
    clip = media.url("/media/clip.mp4")
    # and a receiver that accepts and trickles its answer a byte a second
    with Tarpit(trickle=1.0) as pit, stack.http() as http:
        # and a first wave of jobs whose deliveries take every delivery thread
        first = [submit(http, clip, callback_url=pit.url()) for _ in range(4)]
        pit.wait_open(4, timeout=60)
        accepted_before = pit.accepted
        started = time.monotonic()

        # When many more fast jobs with the same callback come in meanwhile
        more = [submit(http, clip, callback_url=pit.url()) for _ in range(JOBS)]

        # Then every one of them downloads and succeeds within the budget
        ended = [wait_status(http, job_id, TERMINAL, timeout=BUDGET_S) for job_id in more]
        took = time.monotonic() - started
        assert [job["status"] for job in ended] == ["succeeded"] * JOBS, ended
        assert took < BUDGET_S, took
        # while the deliveries kept trying the tarpit (a stuck attempt ends at its deadline
        # and the next connects), and none got through
        wait_for(
            lambda: pit.accepted > accepted_before,
            timeout=30,
            what="a delivery attempt to end at its deadline and the next to connect",
        )
        delivered = stack.query(
            "SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'"
        )
        assert delivered == [(0,)]
        assert all(wait_status(http, j, TERMINAL)["status"] == "succeeded" for j in first)
        print(f"{JOBS} jobs succeeded in {took:.1f} s beside {pit.accepted} tarpit connections")
