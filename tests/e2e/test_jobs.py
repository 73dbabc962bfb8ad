"""The whole path as a user meets it: the API (uvicorn) and the workers (`dramatiq actors`)
run as real processes against real PostgreSQL and RabbitMQ; media come from a local server.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pika
import pytest

from tests.support.media_server import MediaServer
from tests.support.prom import Samples, delta, samples
from tests.support.rabbitmq import BROKER_URL
from tests.support.stack import (
    TERMINAL,
    Stack,
    assert_invariants,
    submit,
    wait_downloading,
    wait_status,
)
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    from pathlib import Path


pytestmark = pytest.mark.e2e


def ffprobe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        check=True,
        capture_output=True,
    ).stdout
    return dict(json.loads(out))


def test_submit_a_url_and_get_the_file_back(
    stack: Stack, media: MediaServer, tmp_path: Path
) -> None:
    with stack.http() as http:
        # Given a short local video
        started = time.monotonic()
        # When a client submits it
        job_id = submit(http, media.url("/media/clip.mp4"))
        # Then it succeeds, and the row tells the whole story
        job = wait_status(http, job_id, TERMINAL)
        elapsed = time.monotonic() - started
        assert job["status"] == "succeeded", job
        assert job["progress"]["fraction"] == 1.0
        assert job["file"]["mime"] == "video/mp4"
        assert job["finished_at"] is not None
        print(f"submit → succeeded for a 3 s local file: {elapsed:.2f} s")
        # And the file comes back whole, with its streams, duration and embedded title
        response = http.get(f"/v1/jobs/{job_id}/file")
        assert response.status_code == 200
        assert job["file"]["filename"] in response.headers["content-disposition"]
        saved = tmp_path / "clip.mp4"
        saved.write_bytes(response.content)
        assert len(response.content) == job["file"]["size"]
        probe = ffprobe(saved)
        kinds = sorted(s["codec_type"] for s in probe["streams"])
        assert kinds == ["audio", "video"]
        assert float(probe["format"]["duration"]) == pytest.approx(3.0, abs=0.3)
        assert probe["format"]["tags"]["title"] == job["info"]["title"] == "clip"
        # And a range of it can be fetched (players seek, downloads resume)
        partial = http.get(f"/v1/jobs/{job_id}/file", headers={"Range": "bytes=0-99"})
        assert partial.status_code == 206
        assert partial.content == response.content[:100]
        # And every attempt is on record
        attempts = http.get(f"/v1/jobs/{job_id}/attempts").json()["items"]
        assert [(a["step"], a["outcome"]) for a in attempts] == [
            ("probe", "succeeded"),
            ("download", "succeeded"),
        ]
        # And the API's request metrics count the submission
        metrics = httpx.get(f"{stack.base_url}/metrics").text
        submitted = 'path="/v1/jobs",status_code="202"'
        assert any(
            submitted in line
            for line in metrics.splitlines()
            if line.startswith("haul_api_requests_total")
        )


def test_audio_preset_gives_an_mp3(stack: Stack, media: MediaServer, tmp_path: Path) -> None:
    with stack.http() as http:
        job_id = submit(http, media.url("/media/clip.webm"), preset="mp3")
        job = wait_status(http, job_id, TERMINAL)
        assert job["status"] == "succeeded", job
        saved = tmp_path / "a.mp3"
        saved.write_bytes(http.get(f"/v1/jobs/{job_id}/file").content)
        streams = ffprobe(saved)["streams"]
        assert [(s["codec_type"], s["codec_name"]) for s in streams] == [("audio", "mp3")]


def test_a_feed_becomes_a_parent_with_one_child_per_entry(stack: Stack, media: MediaServer) -> None:
    with stack.http() as http:
        parent_id = submit(http, media.url("/feed.rss"))
        parent = wait_status(http, parent_id, TERMINAL)
        assert parent["status"] == "succeeded", parent
        assert parent["children"]["succeeded"] == parent["children"]["total"] == 3
        assert parent["children"]["progress"] == 1.0
        children = http.get("/v1/jobs", params={"parent_id": parent_id}).json()["items"]
        assert len(children) == 3
        assert all(c["file"] is not None and c["parent_id"] == parent_id for c in children)
    assert_invariants(stack)


def test_a_flaky_source_is_retried_then_succeeds(stack: Stack, media: MediaServer) -> None:
    with stack.http() as http:
        job_id = submit(http, media.url(f"/flaky/{uuid.uuid4().hex}/clip.mp4?fail=1"))
        job = wait_status(http, job_id, TERMINAL)
        assert job["status"] == "succeeded", job
        outcomes = [a["outcome"] for a in http.get(f"/v1/jobs/{job_id}/attempts").json()["items"]]
        assert outcomes[:2] == ["retry", "succeeded"]


def test_exhausted_retries_dead_letter_and_the_row_says_so(
    stack: Stack, media: MediaServer
) -> None:
    with stack.http() as http:
        job_id = submit(http, media.url("/status/503"))
        job = wait_status(http, job_id, TERMINAL)
        assert job["status"] == "failed"
        assert job["dead_lettered_at"] is not None
        assert "503" in job["error"]["message"]
        assert job["attempts"] == 2  # HAUL_MAX_RETRIES=1: the first try and one retry
    # And the message sits in the dead-letter queue an operator sees
    connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    try:
        depth = connection.channel().queue_declare(f"{stack.queue_prefix}.probe.XQ", passive=True)
        assert depth.method.message_count >= 1
    finally:
        connection.close()


def _no_files_left(stack: Stack, job_id: str) -> None:
    def clean() -> bool:
        in_temp = list(stack.temp.glob(f"{job_id}-*"))
        in_storage = list(stack.storage.glob(f"*/{job_id}/*"))
        return not in_temp and not in_storage

    wait_for(clean, timeout=5, what="partial files to be removed")


def test_cancel_stops_a_running_download(stack: Stack, media: MediaServer) -> None:
    with stack.http() as http:
        # Given a download trickling in
        job_id = submit(http, media.url("/slow/long.mp4?bps=60000"))
        wait_downloading(http, job_id)
        # When the client cancels it
        response = http.post(f"/v1/jobs/{job_id}/cancel")
        # Then the row says cancelled at once, and the worker stops within 2 s
        assert response.status_code == 200
        assert response.json()["status"] == "cancelled"

        def abandoned() -> bool:
            items = http.get(f"/v1/jobs/{job_id}/attempts").json()["items"]
            return items[-1]["outcome"] == "abandoned"

        cancelled_at = time.monotonic()
        wait_for(abandoned, timeout=5, what="the worker to stop")
        assert time.monotonic() - cancelled_at < 2.0
        _no_files_left(stack, job_id)
        job = http.get(f"/v1/jobs/{job_id}").json()
        assert job["status"] == "cancelled"
        assert job["file"] is None
    assert_invariants(stack)


def test_delete_during_a_download_removes_everything(stack: Stack, media: MediaServer) -> None:
    with stack.http() as http:
        job_id = submit(http, media.url("/slow/long.mp4?bps=60000"))
        wait_downloading(http, job_id)
        assert http.delete(f"/v1/jobs/{job_id}").status_code == 204
        assert http.get(f"/v1/jobs/{job_id}").status_code == 404
        _no_files_left(stack, job_id)


def test_another_clients_job_does_not_exist_for_you(stack: Stack, media: MediaServer) -> None:
    other_key = stack.create_key("other")
    with stack.http() as http, stack.http(other_key) as other:
        job_id = submit(http, media.url("/media/clip.mp4"))
        wait_status(http, job_id, TERMINAL)
        for path in ("", "/file", "/attempts"):
            response = other.get(f"/v1/jobs/{job_id}{path}")
            assert response.status_code == 404
            assert response.headers["content-type"].startswith("application/problem+json")
        assert other.post(f"/v1/jobs/{job_id}/cancel").status_code == 404
        assert other.delete(f"/v1/jobs/{job_id}").status_code == 404
        assert job_id not in {j["id"] for j in other.get("/v1/jobs").json()["items"]}


def test_a_dead_lettered_job_replayed_from_its_row_succeeds(
    stack: Stack, media: MediaServer
) -> None:
    with stack.http() as http:
        # Given a site that fails long enough for the job to exhaust its retries
        job_id = submit(http, media.url(f"/flaky/{uuid.uuid4().hex}/clip.mp4?fail=2"))
        failed = wait_status(http, job_id, TERMINAL)
        assert failed["status"] == "failed" and failed["dead_lettered_at"] is not None
        # When the client replays it after the site recovered
        response = http.post(f"/v1/jobs/{job_id}/retry")
        assert response.status_code == 202, response.text
        # Then it runs again from the row and succeeds
        job = wait_status(http, job_id, TERMINAL)
        assert job["status"] == "succeeded", job
        assert job["file"] is not None
    assert_invariants(stack)


def test_a_worker_refuses_a_redirect_into_the_private_network(
    stack: Stack, media: MediaServer, media_dir: Path
) -> None:
    with MediaServer(media_dir, host="127.0.0.2") as canary, stack.http() as http:
        # Given an allowed server that sends the worker on to a loopback canary
        job_id = submit(http, media.url(f"/away?to={canary.url('/media/clip.mp4')}"))
        # When a real worker process runs the job
        job = wait_status(http, job_id, TERMINAL)
        # Then the job failed saying why, and the canary never saw a request
        assert job["status"] == "failed"
        assert job["error"] == {
            "error_class": "egress_denied",
            "message": "egress denied: a non-public address",
        }
        assert canary.total_hits() == 0
    assert_invariants(stack)


def _samples(stack: Stack) -> Samples:
    return samples(httpx.get(f"{stack.base_url}/metrics").text)


def test_metrics_count_what_happened(stack: Stack, media: MediaServer) -> None:
    # Given the metrics as they stand
    before = _samples(stack)
    with stack.http() as http:
        # When one job succeeds and one fails for good
        good = submit(http, media.url("/media/a.mp4"))
        bad = submit(http, media.url("/missing.mp4"))
        for job_id in (good, bad):
            wait_status(http, job_id, TERMINAL)
        wait_for(
            lambda: http.get(f"/v1/jobs/{bad}").json()["dead_lettered_at"],
            timeout=10,
            what="the dead letter to be recorded",
        )
    after = _samples(stack)
    # Then the counters moved by exactly that
    moved = {
        "submitted": delta(before, after, "haul_jobs_submitted_total"),
        "downloaded": delta(
            before,
            after,
            "haul_attempts_total",
            step="download",
            outcome="succeeded",
            error_class="",
        ),
        "not found": delta(
            before,
            after,
            "haul_attempts_total",
            step="probe",
            outcome="failed",
            error_class="http_404",
        ),
        "dead letters": delta(before, after, "haul_dead_letters_total", error_class="http_404"),
    }
    assert moved == {"submitted": 2, "downloaded": 1, "not found": 1, "dead letters": 1}


def test_every_log_line_of_a_jobs_work_names_the_job(stack: Stack, media: MediaServer) -> None:
    with stack.http() as http:
        # Given the worker's log so far
        before = len(stack.log("worker").splitlines())
        # When one job runs
        job_id = submit(http, media.url("/media/b.mp4"))
        job = wait_status(http, job_id, TERMINAL)
        assert job["status"] == "succeeded"

        def summaries_written() -> bool:
            recent = stack.log("worker").splitlines()[before:]
            return sum("attempt finished" in line and job_id in line for line in recent) >= 2

        wait_for(summaries_written, timeout=10, what="the attempts' summary lines")
    # Then every line logged while its messages were processed carries its job_id
    lines = [
        json.loads(line)
        for line in stack.log("worker").splitlines()[before:]
        if line.startswith("{")
    ]
    work = [line for line in lines if str(line.get("queue", "")).endswith((".probe", ".download"))]
    assert work, "no log line of the job's work"
    assert all(line.get("job_id") == job_id for line in work), work
    # and each attempt ends with one summary line saying who, which, how and how long
    summaries = [line for line in work if line["event"] == "attempt finished"]
    assert [(s["step"], s["outcome"]) for s in summaries] == [
        ("probe", "succeeded"),
        ("download", "succeeded"),
    ]
    for summary in summaries:
        assert summary["client_id"] and summary["attempt"] == 1 and summary["duration_s"] >= 0
