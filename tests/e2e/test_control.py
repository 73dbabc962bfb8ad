"""Queue control with real processes: pause across a worker restart, fleet-wide limits
under many worker processes, per-site limits on two hosts, priorities after a resume.

Deliveries are counted by RabbitMQ itself (its management API), not by haul.
"""

from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.support.media_server import MediaServer
from tests.support.network import TEST_EGRESS_ALLOW
from tests.support.skips import unavailable
from tests.support.stack import BIN, submit, wait_status
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

SECOND_HOST = "127.0.0.3"
STACK_ENV = {"HAUL_EGRESS_ALLOW": f"{TEST_EGRESS_ALLOW},{SECOND_HOST}/32"}
MANAGEMENT = "http://127.0.0.1:15672/api"
THREADS = 4


def deliveries(queue: str) -> int:
    """Messages RabbitMQ delivered from a queue so far (its management statistics)."""
    answer = httpx.get(f"{MANAGEMENT}/queues/%2F/{queue}", auth=("guest", "guest"), timeout=5)
    if answer.status_code == 404:
        return 0
    answer.raise_for_status()
    return int(answer.json().get("message_stats", {}).get("deliver_get", 0))


def wait_deliveries(queue: str, expected: int) -> int:
    """The count once RabbitMQ's statistics (refreshed every few seconds) reach ``expected``."""
    wait_for(lambda: deliveries(queue) >= expected, timeout=30, what=f"{expected} deliveries")
    return deliveries(queue)


@pytest.fixture(scope="module")
def management() -> None:
    try:
        httpx.get(f"{MANAGEMENT}/overview", auth=("guest", "guest"), timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        unavailable(f"RabbitMQ management API not reachable ({exc}); see .ci/run")


@pytest.fixture(scope="module")
def second_host(media_dir: Path) -> Iterator[MediaServer]:
    with MediaServer(media_dir, host=SECOND_HOST) as server:
        yield server


class Sampler(threading.Thread):
    """Samples a query against the jobs table until stopped: what ran at the same time."""

    def __init__(self, stack: Stack, sql: str) -> None:
        super().__init__(daemon=True)
        self.stack, self.sql = stack, sql
        self.samples: list[tuple[Any, ...]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.samples.extend(self.stack.query(self.sql))
            self.done.wait(0.02)

    def __enter__(self) -> Sampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.join()


def all_succeed(stack: Stack, ids: list[str], timeout: float = 180) -> None:
    with stack.http() as http:
        for job_id in ids:
            job = wait_status(http, job_id, {"succeeded", "failed", "cancelled"}, timeout=timeout)
            assert job["status"] == "succeeded", job


def attempts_by_step(stack: Stack, ids: list[str]) -> dict[str, set[int]]:
    """How many attempts each job needed, per step (the set of counts over all jobs)."""
    rows = stack.query(
        "SELECT job_id, step, count(*) FROM job_attempts WHERE job_id = ANY(%s) GROUP BY 1, 2",
        [uuid.UUID(i) for i in ids],
    )
    counts: dict[str, set[int]] = {}
    for _, step, n in rows:
        counts.setdefault(step, set()).add(n)
    return counts


def restart_worker(stack: Stack) -> None:
    stack.stop("worker")
    stack.start_worker()
    stack.wait_worker_ready("worker")


def test_a_pause_spans_a_worker_restart_without_churn_and_resume_runs_everything(
    stack: Stack, media: MediaServer, admin: httpx.Client, management: None
) -> None:
    probe_queue = f"{stack.queue_prefix}.probe"
    before = deliveries(probe_queue)
    stack.stop("worker")
    with stack.http() as http:
        # 25 already in the broker when the pause comes, 25 submitted during it.
        ids = [submit(http, media.url(f"/media/a.mp4?pause={n}")) for n in range(25)]
        assert admin.post("/v1/queues/probe/pause").json()["paused"] is True
        ids += [submit(http, media.url(f"/media/a.mp4?pause={n}")) for n in range(25, 50)]
    try:
        stack.start_worker()
        wait_for(
            lambda: (
                stack.query("SELECT count(*) FROM jobs WHERE held = 'queue_paused'")[0][0] == 50
            ),
            timeout=60,
            what="every job to be held",
        )
        stack.start_scheduler()  # a sweep runs at once: it must not republish held jobs
        wait_for(
            lambda: '"event": "sweep"' in stack.log("worker"), timeout=30, what="a sweep to run"
        )
        restart_worker(stack)

        started = stack.query("SELECT count(*) FROM jobs WHERE started_at IS NOT NULL")
        assert started == [(0,)]
        assert wait_deliveries(probe_queue, before + 25) == before + 25
        queue = admin.get("/v1/queues/probe").json()
        assert queue["depth"] == {"queue_paused": 50}
    finally:
        stack.stop("scheduler")
        admin.post("/v1/queues/probe/resume")

    all_succeed(stack, ids)
    assert attempts_by_step(stack, ids) == {"probe": {1}, "download": {1}}
    # One delivery each while paused (the 25 already sent), one each after the resume.
    assert wait_deliveries(probe_queue, before + 75) == before + 75


def test_max_running_holds_across_a_fleet_of_processes_without_burning_retries(
    stack: Stack, media: MediaServer, admin: httpx.Client
) -> None:
    assert admin.patch("/v1/queues/download", json={"max_running": 2}).status_code == 200
    stack.stop("worker")
    stack.start(
        "fleet",
        [str(BIN / "dramatiq"), "actors", "--processes", "4", "--threads", str(THREADS)],
    )
    running = (
        "SELECT count(*) FROM jobs WHERE status = 'running' AND step = 'download' "
        "AND lease_expires_at IS NOT NULL"
    )
    try:
        with Sampler(stack, running) as sampler, stack.http() as http:
            ids = [submit(http, media.url(f"/slow/a.mp4?bps=150000&fleet={n}")) for n in range(20)]
            all_succeed(stack, ids)
    finally:
        stack.stop("fleet")
        stack.start_worker()
        stack.wait_worker_ready("worker")
        admin.patch("/v1/queues/download", json={"max_running": None})

    most = max(n for (n,) in sampler.samples)
    assert most == 2, f"at most {most} downloads ran at once"
    assert attempts_by_step(stack, ids)["download"] == {1}
    assert {
        a
        for (a,) in stack.query(
            "SELECT attempts FROM jobs WHERE id = ANY(%s)", [uuid.UUID(i) for i in ids]
        )
    } == {1}


def test_a_site_limit_holds_per_host_while_both_hosts_progress(
    stack: Stack, media: MediaServer, second_host: MediaServer, admin: httpx.Client
) -> None:
    for host in ("127.0.0.1", SECOND_HOST):
        assert admin.put(f"/v1/sites/{host}", json={"max_running": 1}).status_code == 200
    per_site = (
        "SELECT count(*) FILTER (WHERE site = '127.0.0.1'), "
        f"count(*) FILTER (WHERE site = '{SECOND_HOST}') FROM jobs "
        "WHERE status = 'running' AND lease_expires_at IS NOT NULL"
    )
    try:
        with Sampler(stack, per_site) as sampler, stack.http() as http:
            ids = [
                submit(http, server.url(f"/slow/a.mp4?bps=150000&site={n}"))
                for n in range(4)
                for server in (media, second_host)
            ]
            all_succeed(stack, ids)
    finally:
        for host in ("127.0.0.1", SECOND_HOST):
            admin.delete(f"/v1/sites/{host}")

    assert max(a for a, _ in sampler.samples) == 1
    assert max(b for _, b in sampler.samples) == 1
    together = sum(1 for a, b in sampler.samples if a and b)
    assert together > 0, "the two hosts never downloaded at the same time"
    assert attempts_by_step(stack, ids) == {"probe": {1}, "download": {1}}


def test_after_a_resume_high_priority_starts_first(
    stack: Stack, media: MediaServer, admin: httpx.Client
) -> None:
    admin.post("/v1/queues/probe/pause")
    try:
        with stack.http() as http:
            low = [submit(http, media.url(f"/media/a.mp4?low={n}"), priority=0) for n in range(40)]
            high = [submit(http, media.url(f"/media/a.mp4?high={n}"), priority=5) for n in range(5)]
    finally:
        admin.post("/v1/queues/probe/resume")
    all_succeed(stack, low + high)

    order = [
        str(job_id)
        for (job_id,) in stack.query(
            "SELECT id FROM jobs WHERE id = ANY(%s) ORDER BY started_at",
            [uuid.UUID(i) for i in low + high],
        )
    ]
    last_high = max(order.index(h) for h in high)
    lows_ahead = sum(1 for job_id in order[:last_high] if job_id in set(low))
    print(f"priority: high jobs at start ranks {sorted(order.index(h) for h in high)}")
    # The guarantee: held jobs are released best first, so every high job is delivered
    # before any low one; only one worker's threads may claim out of order.
    assert lows_ahead <= THREADS - 1, order
