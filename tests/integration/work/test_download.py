"""The download use case (service/work/download.py) called directly, with real yt-dlp and
ffmpeg against the local media server, on a real database and RabbitMQ.

No Dramatiq worker runs: each test plays the part of the worker that received the
message, so it can check exactly what one delivery does to the row, the files and
the queues.
"""

from __future__ import annotations

import json
import subprocess
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from service.db import artifacts as artifact_rows
from service.db import jobs as job_rows
from service.db import transitions
from service.db.models import Job
from service.domain.options import Preset, normalize
from service.domain.states import Phase, Step
from service.errors import Permanent, Transient
from service.intake.jobs import cancel, delete, submit
from service.work import storage
from service.work.download import run_download
from service.work.probe import run_probe
from tests.support.jobs import artifacts_of, attempts_of, leftovers, must, row
from tests.support.rabbitmq import take_messages
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from service.db.models import Client
    from service.runtime import Runtime
    from service.settings import Settings
    from tests.support.media_server import MediaServer

pytestmark = pytest.mark.integration


def streams(path: Path) -> list[str]:
    """The codec types of the streams in a media file, as ffprobe sees them."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "json", str(path)],
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    return [s["codec_type"] for s in json.loads(out)["streams"]]


def probed(runtime: Runtime, client: Client, url: str, **kwargs: Preset) -> Job:
    """Submit ``url`` and run its probe: a single item, queued for download."""
    job = submit(runtime, client, url=url, **kwargs)
    run_probe(runtime, job.id)
    ready = must(runtime, job.id)
    assert (ready.status, ready.step) == ("queued", "download"), ready
    return ready


# --- the happy paths ----------------------------------------------------------------------------


def test_a_file_is_probed_downloaded_and_stored_with_its_hash(
    runtime: Runtime, settings: Settings, client: Client, media: MediaServer
) -> None:
    # Given a submitted job for a direct MP4 link
    job = submit(runtime, client, url=media.url("/media/clip.mp4"))
    # When the probe runs
    run_probe(runtime, job.id)
    # Then the job waits for its download, knows its title, and the download is announced
    after_probe = must(runtime, job.id)
    assert after_probe.status == "queued"
    assert after_probe.step == "download"
    assert after_probe.info.get("title")
    assert after_probe.lease_owner is None
    assert after_probe.published_at is not None
    ((message, _),) = take_messages(f"{settings.queue_prefix}.download")
    assert (message["actor_name"], message["args"]) == ("download", [str(job.id)])

    # When the download runs
    run_download(runtime, job.id)
    # Then the job succeeded with one artifact that describes the stored file truthfully
    done = must(runtime, job.id)
    assert done.status == "succeeded"
    assert done.finished_at is not None
    assert done.lease_owner is None
    assert done.progress == 1.0
    (artifact,) = artifacts_of(runtime, job.id)
    stored = storage.resolve(settings.storage_dir, artifact.path)
    assert stored.parent == storage.job_dir(settings.storage_dir, client.id, job.id).resolve()
    assert stored.is_file()
    assert artifact.sha256 == storage.sha256_of(stored)
    assert artifact.size == stored.stat().st_size == done.bytes_done
    assert artifact.mime == "video/mp4"
    assert artifact.filename == stored.name
    assert artifact.duration == pytest.approx(3.0, abs=0.3)
    assert sorted(streams(stored)) == ["audio", "video"]
    # and nothing is left in the scratch space
    assert leftovers(settings.temp_dir) == []
    # and each step left one finished attempt that names the yt-dlp version
    attempts = attempts_of(runtime, job.id)
    assert [(a.step, a.outcome) for a in attempts] == [
        ("probe", "succeeded"),
        ("download", "succeeded"),
    ]
    assert all(a.ytdlp_version and a.finished_at for a in attempts)


@pytest.mark.parametrize(
    ("preset", "mime", "suffix", "kinds"),
    [
        (Preset.MP3, "audio/mpeg", ".mp3", ["audio"]),
        (Preset.AUDIO, "audio/mp4", ".m4a", ["audio"]),
        (Preset.P720, "video/mp4", ".mp4", ["audio", "video"]),
    ],
    ids=["mp3", "audio-m4a", "720p"],
)
def test_each_preset_stores_the_file_it_promises(
    runtime: Runtime,
    settings: Settings,
    client: Client,
    media: MediaServer,
    preset: Preset,
    mime: str,
    suffix: str,
    kinds: list[str],
) -> None:
    # Given a video submitted with the preset, probed
    job = probed(runtime, client, media.url("/media/clip.webm"), preset=preset)
    # When it is downloaded
    run_download(runtime, job.id)
    # Then the stored file has the promised type and streams, and nothing else
    assert must(runtime, job.id).status == "succeeded"
    (artifact,) = artifacts_of(runtime, job.id)
    assert artifact.mime == mime
    assert artifact.filename.endswith(suffix)
    assert sorted(streams(storage.resolve(settings.storage_dir, artifact.path))) == kinds


def test_a_page_with_a_video_tag_downloads_its_video(
    runtime: Runtime, client: Client, media: MediaServer
) -> None:
    # Given an HTML page embedding a <video>, probed
    job = probed(runtime, client, media.url("/page.html"))
    # When it is downloaded
    run_download(runtime, job.id)
    # Then the job succeeded, titled after the page
    done = must(runtime, job.id)
    assert done.status == "succeeded"
    assert done.info["title"] == "Test Page Title (1)"
    (artifact,) = artifacts_of(runtime, job.id)
    assert artifact.title == "Test Page Title (1)"


@pytest.mark.parametrize(
    ("path", "status", "retried", "mentions"),
    [
        pytest.param("/missing.mp4", "failed", False, "404", id="permanent-404"),
        pytest.param("/status/503", "retrying", True, "503", id="transient-503"),
    ],
)
def test_a_download_that_fails_leaves_no_files_and_says_why(
    runtime: Runtime,
    settings: Settings,
    client: Client,
    media: MediaServer,
    path: str,
    status: str,
    retried: bool,
    mentions: str,
) -> None:
    # Given a job queued for download whose URL now fails (it probed fine earlier)
    job = Job(
        client_id=client.id,
        url=media.url(path),
        options=normalize(None, None).model_dump(mode="json"),
        step=Step.DOWNLOAD.value,
        max_attempts=settings.max_retries + 1,
    )
    with runtime.db.session() as session:
        job_rows.insert(session, job)
    # When the download runs
    with pytest.raises(Transient if retried else Permanent):
        run_download(runtime, job.id)
    # Then the row says what happened and why, and no file is left anywhere
    after = must(runtime, job.id)
    assert after.status == status
    assert after.lease_owner is None
    reason = after.error_message if status == "failed" else after.last_error
    assert reason is not None
    assert mentions in reason
    assert artifacts_of(runtime, job.id) == []
    assert leftovers(settings.storage_dir) == []
    assert leftovers(settings.temp_dir) == []


# --- duplicates, cancel, delete -----------------------------------------------------------------


def test_a_duplicate_message_for_a_finished_job_changes_nothing(
    runtime: Runtime, settings: Settings, client: Client, media: MediaServer
) -> None:
    # Given a job that already succeeded
    job = probed(runtime, client, media.url("/media/clip.mp4"))
    run_download(runtime, job.id)
    before = must(runtime, job.id)
    (artifact,) = artifacts_of(runtime, job.id)
    # When the download message is delivered again (and a stale probe message too)
    run_download(runtime, job.id)
    run_probe(runtime, job.id)
    # Then the row, its artifact, its attempts and its file are exactly as they were
    after = must(runtime, job.id)
    assert (after.status, after.attempts, after.updated_at) == (
        before.status,
        before.attempts,
        before.updated_at,
    )
    assert artifacts_of(runtime, job.id) == [artifact]
    assert len(attempts_of(runtime, job.id)) == 2
    stored = storage.resolve(settings.storage_dir, artifact.path)
    assert storage.sha256_of(stored) == artifact.sha256
    assert leftovers(settings.temp_dir) == []


def test_a_message_for_a_job_another_worker_holds_is_dropped(
    runtime: Runtime, client: Client, media: MediaServer
) -> None:
    # Given a job another worker has claimed, with a lease still valid
    job = probed(runtime, client, media.url("/media/clip.mp4"))
    with runtime.db.session() as session:
        held = transitions.claim(
            session, job.id, Step.DOWNLOAD, "other/1", timedelta(seconds=60), Phase.DOWNLOADING
        )
    assert held is not None
    # When a redelivered copy of its message reaches this worker
    run_download(runtime, job.id)
    # Then it leaves the job alone: still running under the other worker, no file
    after = must(runtime, job.id)
    assert (after.status, after.lease_owner, after.attempts) == ("running", "other/1", 1)
    assert artifacts_of(runtime, job.id) == []


@dataclass
class Background:
    """A use case running in a thread, as a Dramatiq worker thread would run it."""

    target: Callable[[], None]
    errors: list[BaseException] = field(default_factory=list)
    thread: threading.Thread | None = None

    def start(self) -> Background:
        def run() -> None:
            try:
                self.target()
            except BaseException as exc:
                self.errors.append(exc)

        self.thread = threading.Thread(target=run, name="test-worker", daemon=True)
        self.thread.start()
        return self

    def finished_within(self, seconds: float) -> bool:
        assert self.thread is not None
        self.thread.join(seconds)
        return not self.thread.is_alive()


SLOW_LONG = "/slow/long.mp4?bps=60000"


def downloading(runtime: Runtime, client: Client, media: MediaServer) -> tuple[Job, Background]:
    """A slow download in a worker thread, once it has written progress to the row."""
    job = probed(runtime, client, media.url(SLOW_LONG))
    worker = Background(lambda: run_download(runtime, job.id)).start()

    def progress() -> int | None:
        current = row(runtime, job.id)
        return current.bytes_done if current is not None else None

    wait_for(progress, timeout=15, what="the download to report bytes")
    assert must(runtime, job.id).status == "running"
    return job, worker


def test_cancelling_a_running_download_stops_it_and_leaves_nothing(
    runtime: Runtime, settings: Settings, client: Client, media: MediaServer
) -> None:
    # Given a download in progress
    job, worker = downloading(runtime, client, media)
    # When its owner cancels it
    view = cancel(runtime, client, job.id)
    # Then the worker stops promptly without error
    assert view.job.status == "cancelled"
    assert worker.finished_within(5), "the download did not stop within 5 s of the cancel"
    assert worker.errors == []
    # and the job stays cancelled with no file, in storage or in scratch space
    after = must(runtime, job.id)
    assert after.status == "cancelled"
    assert after.finished_at is not None
    assert artifacts_of(runtime, job.id) == []
    assert not storage.job_dir(settings.storage_dir, client.id, job.id).exists()
    assert leftovers(settings.temp_dir) == []
    # and the download attempt is recorded as abandoned
    assert [(a.step, a.outcome) for a in attempts_of(runtime, job.id)] == [
        ("probe", "succeeded"),
        ("download", "abandoned"),
    ]


def test_deleting_a_running_download_stops_it_and_leaves_nothing(
    runtime: Runtime, settings: Settings, client: Client, media: MediaServer
) -> None:
    # Given a download in progress
    job, worker = downloading(runtime, client, media)
    # When its owner deletes the job
    delete(runtime, client, job.id)
    # Then the worker stops promptly without error, and no trace of the job remains
    assert worker.finished_within(5), "the download did not stop within 5 s of the delete"
    assert worker.errors == []
    assert row(runtime, job.id) is None
    assert attempts_of(runtime, job.id) == []
    with runtime.db.session() as session:
        assert artifact_rows.for_job(session, job.id) is None
    assert leftovers(settings.storage_dir) == []
    assert leftovers(settings.temp_dir) == []
