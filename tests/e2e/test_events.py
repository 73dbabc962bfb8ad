"""Live progress over Server-Sent Events, from a real worker through PostgreSQL's
NOTIFY to a real API process and its clients."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.support.sse import Event, events, parse
from tests.support.stack import TERMINAL, Stack, submit, wait_status
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    from tests.support.media_server import MediaServer

pytestmark = pytest.mark.e2e

# One key opens the 200 streams of test_many_clients_watch_at_once (a measure of what one
# API process holds), so its per-client cap is raised past that here.
STACK_ENV = {"HAUL_SSE_HEARTBEAT_S": "1", "HAUL_SSE_MAX_STREAMS_PER_CLIENT": "250"}

SLOW = "/slow/long.mp4?bps=150000"  # about four seconds of download


def _stream(stack: Stack, path: str, key: str | None = None, **headers: str) -> httpx.Client:
    return httpx.Client(
        base_url=stack.base_url,
        headers={"Authorization": f"Bearer {key or stack.key}", **headers},
        timeout=httpx.Timeout(10, read=30),
    )


def _watch(stack: Stack, job_id: str, **headers: str) -> list[Event]:
    """Every message of a job's stream, until the server ends it after the final state."""
    with (
        _stream(stack, "", **headers) as http,
        http.stream("GET", f"/v1/jobs/{job_id}/events") as response,
    ):
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        return [e for e in events(response) if e.kind is not None]


def test_a_client_watches_a_download_from_start_to_finish(stack: Stack, media: MediaServer) -> None:
    with stack.http() as http:
        # Given a download that takes a few seconds
        job_id = submit(http, media.url(SLOW))
        # When the client watches its job
        seen = _watch(stack, job_id)
    # Then it saw the job run, its progress rise, and the final state last
    states = [e.data["status"] for e in seen if e.kind == "state"]
    fractions = [e.data["progress"] for e in seen if e.kind == "progress" and e.data["progress"]]
    assert states[-1] == "succeeded", states
    assert "running" in states
    assert len(fractions) >= 2, seen
    assert fractions == sorted(fractions), fractions
    assert seen[-1].kind == "state" and seen[-1].data["status"] == "succeeded"
    assert all(e.id is not None for e in seen if e.kind == "state")
    # How long from the worker's write to the client's read (same machine, same clock)
    delays = [
        e.received - datetime.fromisoformat(e.data["at"]).timestamp()
        for e in seen
        if e.kind == "progress"
    ]
    print(
        f"progress latency over {len(delays)} events: median {statistics.median(delays):.3f} s,"
        f" max {max(delays):.3f} s"
    )


def test_reconnecting_with_last_event_id_misses_no_state_change(
    stack: Stack, media: MediaServer
) -> None:
    with stack.http() as http:
        # Given a client that watched a job until it started downloading, then dropped
        job_id = submit(http, media.url(SLOW))
        last_seen: int | None = None
        with (
            _stream(stack, "") as client,
            client.stream("GET", f"/v1/jobs/{job_id}/events") as response,
        ):
            for event in events(response):
                if event.kind == "state" and event.data["phase"] == "downloading":
                    last_seen = event.id
                    break
        assert last_seen is not None
        # When it reconnects with the last id it saw, after the job has finished
        wait_status(http, job_id, TERMINAL)
        replayed = _watch(stack, job_id, **{"Last-Event-ID": str(last_seen)})
    # Then it is sent every state change after that one, in order, and nothing else
    recorded = stack.query(
        "SELECT id, status, phase FROM job_events WHERE job_id = %s AND id > %s ORDER BY id",
        uuid.UUID(job_id),
        last_seen,
    )
    assert [(e.id, e.data["status"], e.data["phase"]) for e in replayed] == recorded
    assert recorded[-1][1] == "succeeded"


def _readme_curls() -> list[str]:
    """The README's two `curl -N` commands for live events, as written there."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    return [line for line in readme.splitlines() if line.startswith("curl -N ")]


def _curl(stack: Stack, command: str, job_id: str) -> list[Event]:
    """Run a README command against this stack (its address for localhost:8000)."""
    address = stack.base_url.removeprefix("http://")
    out = subprocess.run(
        ["bash", "-c", command.replace("localhost:8000", address)],
        env={**os.environ, "ID": job_id, "KEY": stack.key},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return [e for e in parse(out.splitlines()) if e.kind is not None]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_readme_curl_commands_watch_a_job_and_replay_after_an_id(
    stack: Stack, media: MediaServer
) -> None:
    # Given the README's commands, and a download that takes a few seconds
    watch, replay = _readme_curls()
    assert "Last-Event-ID: 41" in replay
    with stack.http() as http:
        job_id = submit(http, media.url(SLOW))
        # When a user runs the first: it ends by itself after the final state
        seen = _curl(stack, watch, job_id)
        # and the second, with the id of the first state change it saw
        first = next(e for e in seen if e.kind == "state")
        replayed = _curl(stack, replay.replace("41", str(first.id)), job_id)
    # Then the output has the README's shape: state changes with ids, progress without,
    # the final state last
    assert {e.kind for e in seen} == {"state", "progress"}
    assert all((e.id is not None) == (e.kind == "state") for e in seen)
    assert (seen[-1].kind, seen[-1].data["status"]) == ("state", "succeeded")
    # and the replay is every state change after that id
    recorded = stack.query(
        "SELECT id, status FROM job_events WHERE job_id = %s AND id > %s ORDER BY id",
        uuid.UUID(job_id),
        first.id,
    )
    assert [(e.id, e.data["status"]) for e in replayed] == recorded


def test_a_stream_opened_after_an_id_is_sent_the_changes_since_it_first(
    stack: Stack, media: MediaServer
) -> None:
    # A dashboard page remembers the newest change it was rendered at and opens its stream
    # with ?after=: what changed between the two reaches it.
    (rendered_at,) = stack.query("SELECT coalesce(max(id), 0) FROM job_events")[0]
    with stack.http() as http:
        # Given a job that ran to its end after the page was rendered, before its stream opened
        job_id = submit(http, media.url("/media/a.mp4"))
        wait_status(http, job_id, TERMINAL)
        # When the stream opens after the page's id
        seen: list[Event] = []
        deadline = time.monotonic() + 30
        with (
            _stream(stack, "") as client,
            client.stream("GET", "/v1/events", params={"after": rendered_at}) as response,
        ):
            assert response.status_code == 200, response.read()
            for event in events(response):
                if event.kind == "state" and event.data["job_id"] == job_id:
                    seen.append(event)
                    if event.data["status"] in TERMINAL:
                        break
                assert time.monotonic() < deadline, f"no end of {job_id} replayed: {seen}"
    # Then it is sent every state change of the job since, in order, before anything live
    recorded = stack.query(
        "SELECT id, status FROM job_events WHERE job_id = %s AND id > %s ORDER BY id",
        uuid.UUID(job_id),
        rendered_at,
    )
    assert [(e.id, e.data["status"]) for e in seen] == recorded
    assert recorded[-1][1] == "succeeded"


class Watcher(threading.Thread):
    """Reads ``/v1/events`` for one key in the background."""

    def __init__(self, stack: Stack, key: str) -> None:
        super().__init__(daemon=True)
        self.stack, self.key = stack, key
        self.seen: list[Event] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with (
            _stream(self.stack, "", key=self.key) as http,
            http.stream("GET", "/v1/events") as response,
        ):
            for event in events(response):
                self.seen.append(event)
                if self.stop.is_set():
                    return

    def states_of(self, job_id: str) -> list[str]:
        return [
            e.data["status"] for e in self.seen if e.kind == "state" and e.data["job_id"] == job_id
        ]


def test_the_all_jobs_stream_carries_only_the_callers_jobs_and_keeps_alive(
    stack: Stack, media: MediaServer
) -> None:
    # Given two clients, one watching all of its jobs
    other_key = stack.create_key("neighbour")
    watcher = Watcher(stack, stack.key)
    watcher.start()
    wait_for(
        lambda: any(e.kind is None for e in watcher.seen), timeout=10, what="a keep-alive comment"
    )
    # When each submits a job
    with stack.http() as mine, stack.http(other_key) as theirs:
        my_job = submit(mine, media.url("/media/a.mp4"))
        their_job = submit(theirs, media.url("/media/b.mp4"))
        wait_status(theirs, their_job, TERMINAL)
        wait_for(lambda: "succeeded" in watcher.states_of(my_job), timeout=30, what="my job's end")
    watcher.stop.set()
    # Then the watcher saw its own job through, and nothing of the other client's
    assert watcher.states_of(my_job)[-1] == "succeeded"
    assert all(e.data.get("job_id") != their_job for e in watcher.seen)
    # and the keep-alives were comments only, never an (empty) message
    assert {e.kind for e in watcher.seen} <= {None, "state", "progress"}


def test_many_clients_watch_at_once(stack: Stack, media: MediaServer) -> None:
    """How many live streams one API process holds while a job runs (bounded here)."""
    clients = 200
    ready = 0
    got_final = 0

    async def watch(job: asyncio.Future[str], http: httpx.AsyncClient) -> None:
        nonlocal ready, got_final
        async with http.stream("GET", "/v1/events") as response:
            counted = False
            async for line in response.aiter_lines():
                if line.startswith(":") and not counted:
                    ready, counted = ready + 1, True
                if line.startswith("data:") and job.done():
                    data = json.loads(line.removeprefix("data:"))
                    if data["job_id"] == job.result() and data.get("status") == "succeeded":
                        got_final += 1
                        return

    async def main() -> float:
        limits = httpx.Limits(max_connections=clients + 10)
        async with httpx.AsyncClient(
            base_url=stack.base_url,
            headers={"Authorization": f"Bearer {stack.key}"},
            timeout=httpx.Timeout(10, read=60),
            limits=limits,
        ) as http:
            job: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            tasks = [asyncio.create_task(watch(job, http)) for _ in range(clients)]
            deadline = time.monotonic() + 30
            while ready < clients and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert ready == clients, f"only {ready} of {clients} streams opened"
            began = time.monotonic()
            response = await http.post("/v1/jobs", json={"url": media.url("/media/c.mp4")})
            job.set_result(response.json()["id"])
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
            return time.monotonic() - began

    elapsed = asyncio.run(main())
    print(
        f"{got_final} of {clients} concurrent streams saw the job end, {elapsed:.1f} s after submit"
    )
    assert got_final == clients
