"""Idempotency keys, the active-jobs limit and the request rate hold across two API
processes (uvicorn) on one database: their state is in PostgreSQL, not in a process.

Limits are set as an operator does, with ``haul clients limits``. The worker is
stopped first, so no job ends while a test counts active ones.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.support.network import free_port
from tests.support.stack import BIN, haul, wait_api_ready

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

SOURCE = "https://media.example/watch/clip.mp4"  # never fetched: no worker runs


@pytest.fixture(scope="module")
def two_apis(stack: Stack) -> Iterator[list[str]]:
    """The stack's API and a second API process on another port; no worker."""
    stack.stop("worker")
    port = free_port()
    stack.start(
        "api2",
        [str(BIN / "uvicorn"), "service.api.app:app", "--host", "127.0.0.1", "--port", str(port)],
    )
    second = f"http://127.0.0.1:{port}"
    wait_api_ready(second)
    yield [stack.base_url, second]
    stack.stop("api2")


def limits(stack: Stack, name: str, *flags: str) -> dict[str, object]:
    """`haul clients limits NAME …` as an operator runs it; the limits that hold now."""
    return dict(json.loads(haul(stack.env, "clients", "limits", name, *flags, "--json")))


def at_once(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Every call released together from its own thread (a barrier, not a sleep)."""
    start = threading.Barrier(len(calls))

    def one(call: Callable[[], httpx.Response]) -> httpx.Response:
        start.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(one, calls))


def jobs_of(stack: Stack, name: str) -> int:
    rows = stack.query(
        "SELECT count(*) FROM jobs j JOIN clients c ON c.id = j.client_id WHERE c.name = %s", name
    )
    return int(rows[0][0])


def test_twenty_posts_with_one_key_across_two_api_processes_make_one_job(
    stack: Stack, two_apis: list[str]
) -> None:
    # Given a client, and 20 identical requests with one key, half to each API process
    key = stack.create_key("idem")
    sessions = [httpx.Client(base_url=url, timeout=30) for url in two_apis]
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "order-2026-17"}
    body = {"url": SOURCE, "metadata": {"order": 17}}

    def send(i: int) -> Callable[[], httpx.Response]:
        return lambda: sessions[i % 2].post("/v1/jobs", json=body, headers=headers)

    # When they are sent at once
    answers = at_once([send(i) for i in range(20)])
    # Then one created the job and 19 answered with it; there is one row and one key
    assert sorted(a.status_code for a in answers) == [200] * 19 + [202]
    assert len({a.json()["id"] for a in answers}) == 1
    assert jobs_of(stack, "idem") == 1
    assert stack.query("SELECT count(*) FROM idempotency_keys") == [(1,)]
    # and the same key with another body, at either process, is a 422
    for s in sessions:
        other = s.post("/v1/jobs", json={**body, "priority": 5}, headers=headers)
        assert other.status_code == 422
        assert other.json()["type"] == "/problems/idempotency-key-reused"
    assert jobs_of(stack, "idem") == 1
    for s in sessions:
        s.close()


def test_the_active_jobs_limit_holds_across_two_api_processes(
    stack: Stack, two_apis: list[str]
) -> None:
    # Given a client an operator allowed 3 active jobs
    key = stack.create_key("busy")
    held = limits(stack, "busy", "--max-active-jobs", "3")
    assert held["max_active_jobs"] == 3
    sessions = [
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        for url in two_apis
    ]
    # When it sends 12 submissions at once, half to each process
    answers = at_once(
        [(lambda s=sessions[i % 2]: s.post("/v1/jobs", json={"url": SOURCE})) for i in range(12)]
    )
    # Then 3 were accepted and 9 refused with a problem naming the limit; 3 rows exist
    assert sorted(a.status_code for a in answers) == [202] * 3 + [403] * 9
    refused = next(a for a in answers if a.status_code == 403)
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert (refused.json()["limit"], refused.json()["value"]) == ("max_active_jobs", 3)
    assert jobs_of(stack, "busy") == 3
    for s in sessions:
        s.close()


def test_the_request_rate_holds_across_two_api_processes(stack: Stack, two_apis: list[str]) -> None:
    # Given a client an operator allowed 6 requests per minute
    key = stack.create_key("chatty")
    assert limits(stack, "chatty", "--requests-per-minute", "6")["requests_per_minute"] == 6
    sessions = [
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        for url in two_apis
    ]
    # When it sends 10 submissions, alternating between the processes
    answers = [sessions[i % 2].post("/v1/jobs", json={"url": SOURCE}) for i in range(10)]
    # Then 6 pass and 4 are refused with Retry-After and RateLimit headers; 6 rows exist
    assert [a.status_code for a in answers] == [202] * 6 + [429] * 4
    assert [a.headers["ratelimit"].split(";")[1] for a in answers[:6]] == [
        f"r={n}" for n in range(5, -1, -1)
    ]
    for refused in answers[6:]:
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["ratelimit-policy"] == '"requests";q=6;w=60'
        assert refused.json()["limit"] == "requests_per_minute"
    assert jobs_of(stack, "chatty") == 6
    # and `default` gives the client back to the deployment's setting (unset: no limit)
    assert (
        limits(stack, "chatty", "--requests-per-minute", "default")["requests_per_minute"] is None
    )
    assert sessions[0].get("/v1/jobs").status_code == 200
    for s in sessions:
        s.close()
