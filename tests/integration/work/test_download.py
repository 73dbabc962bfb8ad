"""The worker use cases (probe, download, sweeps) called directly, with real yt-dlp and ffmpeg
against the local media server, on a real database and RabbitMQ.

No Dramatiq worker runs: each test plays the part of the worker that received the
message, so it can check exactly what one delivery does to the row, the files and
the queues.
"""

from __future__ import annotations

import json
import subprocess
import threading
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from service.db import artifacts as artifact_rows
from service.db import attempts as attempt_rows
from service.db import jobs as job_rows
from service.db import transitions
from service.db.models import Artifact, Job, JobAttempt
from service.domain.options import Preset, normalize
from service.domain.states import Phase, Step
from service.errors import JobFailure, Permanent, Transient
from service.fleet import sweeps
from service.intake.clients import create_client
from service.intake.jobs import cancel, delete, submit
from service.media.limits import Limits
from service.runtime import build_runtime
from service.work import probe as work_probe
from service.work import storage
from service.work.download import run_download
from service.work.probe import run_probe
from tests.conftest import free_port
from tests.integration.conftest import queue_depth, take_messages
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from service.db.models import Client
    from service.runtime import Runtime
    from service.settings import Settings
    from tests.support.media_server import MediaServer

pytestmark = pytest.mark.integration


@pytest.fixture
def client(runtime: Runtime) -> Client:
    made, _ = create_client(runtime, "x")
    return made


def row(runtime: Runtime, job_id: uuid.UUID) -> Job | None:
    with runtime.db.session() as session:
        return job_rows.get(session, job_id)


def must(runtime: Runtime, job_id: uuid.UUID) -> Job:
    job = row(runtime, job_id)
    assert job is not None, f"job {job_id} is gone"
    return job


def artifacts_of(runtime: Runtime, job_id: uuid.UUID) -> list[Artifact]:
    with runtime.db.session() as session:
        return list(session.execute(sa.select(Artifact).where(Artifact.job_id == job_id)).scalars())


def attempts_of(runtime: Runtime, job_id: uuid.UUID) -> list[JobAttempt]:
    with runtime.db.session() as session:
        return attempt_rows.for_job(session, job_id)


def children_of(runtime: Runtime, parent_id: uuid.UUID) -> list[Job]:
    with runtime.db.session() as session:
        stmt = sa.select(Job).where(Job.parent_id == parent_id).order_by(Job.url)
        return list(session.execute(stmt).scalars())


def streams(path: Path) -> list[str]:
    """The codec types of the streams in a media file, as ffprobe sees them."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "json", str(path)],
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    return [s["codec_type"] for s in json.loads(out)["streams"]]


def leftovers(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*")) if directory.exists() else []


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


def test_a_feed_becomes_a_parent_that_succeeds_when_its_children_do(
    runtime: Runtime, settings: Settings, client: Client, media: MediaServer
) -> None:
    # Given a submitted RSS feed with three enclosures
    parent = submit(runtime, client, url=media.url("/feed.rss"))
    # When it is probed
    run_probe(runtime, parent.id)
    # Then it waits on three download children, each announced
    waiting = must(runtime, parent.id)
    assert waiting.status == "running"
    assert waiting.phase == Phase.AWAITING_CHILDREN.value
    assert waiting.lease_owner is None
    children = children_of(runtime, parent.id)
    assert len(children) == 3
    assert [c.url.rsplit("/", 1)[-1] for c in children] == ["a.mp4", "b.mp4", "c.mp4"]
    assert all(c.step == "download" and c.status == "queued" for c in children)
    assert all(c.client_id == client.id and c.published_at for c in children)
    announced = take_messages(f"{settings.queue_prefix}.download")
    assert sorted(m["args"][0] for m, _ in announced) == sorted(str(c.id) for c in children)

    # When each child is downloaded
    for child in children:
        assert must(runtime, parent.id).status == "running"
        run_download(runtime, child.id)
    # Then every child has its file and the parent succeeded, saying how many it queued
    assert all(must(runtime, c.id).status == "succeeded" for c in children)
    assert all(len(artifacts_of(runtime, c.id)) == 1 for c in children)
    done = must(runtime, parent.id)
    assert done.status == "succeeded"
    assert done.finished_at is not None
    assert done.info["playlist"]["entries_queued"] == 3
    assert done.info["playlist"]["capped"] is False


@pytest.fixture
def capped_runtime(settings: Settings) -> Iterator[Runtime]:
    """The same database and queues, with playlists capped at four entries."""
    rt = build_runtime(settings.model_copy(update={"playlist_max_entries": 4}))
    yield rt
    rt.broker.close()
    rt.db.dispose()


def test_a_feed_longer_than_the_cap_is_cut_and_says_so(
    capped_runtime: Runtime, client: Client, media: MediaServer, settings: Settings
) -> None:
    # Given playlists capped at four entries and a feed of ten
    parent = submit(capped_runtime, client, url=media.url("/feed-big.rss?n=10"))
    # When it is probed
    run_probe(capped_runtime, parent.id)
    # Then only four children exist, and the parent records that the feed was capped
    children = children_of(capped_runtime, parent.id)
    assert len(children) == 4
    assert len({c.url for c in children}) == 4
    info = must(capped_runtime, parent.id).info["playlist"]
    assert info["capped"] is True
    assert info["entries_queued"] == 4
    assert queue_depth(f"{settings.queue_prefix}.download") == 4


# --- failures -----------------------------------------------------------------------------------


def test_a_missing_file_fails_once_for_good_with_a_readable_reason(
    runtime: Runtime, settings: Settings, client: Client, media: MediaServer
) -> None:
    # Given a job for a URL that answers 404
    job = submit(runtime, client, url=media.url("/missing.mp4"))
    # When the probe runs, it raises Permanent (Dramatiq then dead-letters it, no retry)
    with pytest.raises(Permanent):
        run_probe(runtime, job.id)
    # Then the job failed with a stable class and a message a person can read
    failed = must(runtime, job.id)
    assert failed.status == "failed"
    assert failed.error_class == "http_404"
    assert failed.error_message is not None
    assert "404" in failed.error_message
    assert "Traceback" not in failed.error_message
    assert "\x1b[" not in failed.error_message
    assert not failed.error_message.startswith("ERROR")
    assert failed.finished_at is not None
    assert failed.lease_owner is None
    assert failed.next_attempt_at is None
    # and it is not retried: no download is announced, and the attempt says failed
    assert queue_depth(f"{settings.queue_prefix}.download") == 0
    (attempt,) = attempts_of(runtime, job.id)
    assert (attempt.outcome, attempt.error_class) == ("failed", "http_404")


def test_a_transient_failure_raises_for_a_retry_and_the_row_says_retrying(
    runtime: Runtime, client: Client, media: MediaServer
) -> None:
    # Given a job for a URL that answers 503
    job = submit(runtime, client, url=media.url("/status/503"))
    # When the probe runs
    # Then it raises, so Dramatiq's Retries middleware schedules another attempt
    with pytest.raises(JobFailure):
        run_probe(runtime, job.id)
    # and the row says it is waiting to retry, why, and that nobody holds it
    retrying = must(runtime, job.id)
    assert retrying.status == "retrying"
    assert retrying.last_error is not None
    assert "503" in retrying.last_error
    assert retrying.lease_owner is None
    assert retrying.lease_expires_at is None
    assert retrying.finished_at is None
    (attempt,) = attempts_of(runtime, job.id)
    assert attempt.outcome == "retry"


def test_a_retried_probe_succeeds_once_the_site_recovers(
    runtime: Runtime, client: Client, media: MediaServer
) -> None:
    # Given a site that answers 503 once, then works
    key = uuid.uuid4().hex
    job = submit(runtime, client, url=media.url(f"/flaky/{key}/clip.mp4?fail=1"))
    with pytest.raises(JobFailure):
        run_probe(runtime, job.id)
    # When the retry is delivered
    run_probe(runtime, job.id)
    # Then the job moves on to its download, and the history shows both attempts
    ready = must(runtime, job.id)
    assert (ready.status, ready.step, ready.last_error) == ("queued", "download", None)
    assert [a.outcome for a in attempts_of(runtime, job.id)] == ["retry", "succeeded"]


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


def test_the_message_of_a_job_cancelled_while_queued_is_dropped(
    runtime: Runtime, settings: Settings, client: Client, media: MediaServer
) -> None:
    # Given a job cancelled before any worker reached it
    job = submit(runtime, client, url=media.url("/media/clip.mp4"))
    cancel(runtime, client, job.id)
    # When its probe message is delivered
    run_probe(runtime, job.id)
    # Then nothing runs: the job stays cancelled, untried, and no download is announced
    after = must(runtime, job.id)
    assert (after.status, after.attempts, after.started_at) == ("cancelled", 0, None)
    assert attempts_of(runtime, job.id) == []
    assert queue_depth(f"{settings.queue_prefix}.download") == 0


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(
            "/media/clip.mp4",
            id="single",
        ),
        pytest.param(
            "/feed.rss",
            id="playlist",
        ),
    ],
)
def test_a_job_cancelled_while_probing_stays_cancelled_and_its_attempt_is_closed(
    runtime: Runtime,
    settings: Settings,
    client: Client,
    media: MediaServer,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
) -> None:
    # Given a job whose owner cancels it while yt-dlp is probing the URL
    job = submit(runtime, client, url=media.url(path))
    real_probe = work_probe.probe

    def probe_then_cancel(url: str, *, max_entries: int, limits: Limits) -> object:
        found = real_probe(url, max_entries=max_entries, limits=limits)
        cancel(runtime, client, job.id)
        return found

    monkeypatch.setattr(work_probe, "probe", probe_then_cancel)
    # When the probe finishes
    run_probe(runtime, job.id)
    # Then the job stays cancelled with no children and no download announced
    after = must(runtime, job.id)
    assert after.status == "cancelled"
    assert children_of(runtime, job.id) == []
    assert queue_depth(f"{settings.queue_prefix}.download") == 0
    # and its attempt is closed as abandoned, like a download that lost its job
    (attempt,) = attempts_of(runtime, job.id)
    assert attempt.finished_at is not None
    assert attempt.outcome == "abandoned"


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


# --- sweeps -------------------------------------------------------------------------------------


def test_an_expired_lease_is_requeued_until_the_attempts_run_out(
    runtime: Runtime, settings: Settings, client: Client, media: MediaServer
) -> None:
    # Given a job whose worker dies every time it claims it (a one-second lease, never renewed)
    job = submit(runtime, client, url=media.url("/media/clip.mp4"))
    probe_queue = f"{settings.queue_prefix}.probe"
    assert queue_depth(probe_queue) == 1
    max_attempts = must(runtime, job.id).max_attempts
    assert max_attempts == settings.max_retries + 1

    def sweep() -> tuple[int, int] | None:
        outcome = sweeps.expired_leases(runtime)
        return outcome if outcome != (0, 0) else None

    for attempt in range(1, max_attempts + 1):
        owner = f"doomed/{attempt}"
        with runtime.db.session() as session:
            claimed = transitions.claim(
                session, job.id, Step.PROBE, owner, timedelta(seconds=1), Phase.PROBING
            )
            assert claimed is not None, f"claim {attempt} refused"
            attempt_rows.start(session, job.id, claimed.attempts, "probe", owner, "test")
        # When the lease runs out and the sweep runs
        outcome = wait_for(sweep, timeout=10, what=f"the sweep to find lease {attempt} expired")
        current = must(runtime, job.id)
        if attempt < max_attempts:
            # Then the job is queued again, announced again, and the dead attempt closed
            assert outcome == (1, 0)
            assert current.status == "queued"
            assert current.lease_owner is None
            assert current.published_at is not None
            assert queue_depth(probe_queue) == 1 + attempt
        else:
            # Then, past its attempts, it fails for good and is not announced again
            assert outcome == (0, 1)
            assert current.status == "failed"
            assert current.error_class == "attempts_exhausted"
            assert current.error_message
            assert current.finished_at is not None
            assert queue_depth(probe_queue) == max_attempts
    # and every attempt is closed as abandoned, and the failed job cannot be claimed again
    attempts = attempts_of(runtime, job.id)
    assert [(a.outcome, a.error_class) for a in attempts] == [
        ("abandoned", "lease_expired")
    ] * max_attempts
    assert all(a.finished_at for a in attempts)
    with runtime.db.session() as session:
        again = transitions.claim(
            session, job.id, Step.PROBE, "late", timedelta(seconds=60), Phase.PROBING
        )
    assert again is None


def test_a_requeued_job_says_its_worker_stopped_answering(
    runtime: Runtime, client: Client, media: MediaServer
) -> None:
    # Given a job claimed by a worker that died (its one-second lease is never renewed)
    job = submit(runtime, client, url=media.url("/media/clip.mp4"))
    with runtime.db.session() as session:
        claimed = transitions.claim(
            session, job.id, Step.PROBE, "doomed/1", timedelta(seconds=1), Phase.PROBING
        )
    assert claimed is not None
    # When the sweep finds the lease expired and queues the job again
    wait_for(
        lambda: sweeps.expired_leases(runtime) == (1, 0),
        timeout=10,
        what="the sweep to requeue the job",
    )
    # Then the job, queued again, tells its owner why its attempt was lost
    requeued = must(runtime, job.id)
    assert requeued.status == "queued"
    assert requeued.published_at is not None
    assert requeued.last_error is not None
    assert "lease expired" in requeued.last_error


def test_a_job_whose_publish_failed_is_published_by_the_sweep(
    runtime: Runtime, settings: Settings, client: Client, media: MediaServer
) -> None:
    # Given a job submitted while the broker was unreachable
    offline = build_runtime(
        settings.model_copy(
            update={"broker_url": f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"}
        )
    )
    try:
        job = submit(offline, client, url=media.url("/media/clip.mp4"))
    finally:
        offline.broker.close()
        offline.db.dispose()
    stranded = must(runtime, job.id)
    assert stranded.status == "queued"
    assert stranded.published_at is None
    assert stranded.last_error is not None
    assert stranded.last_error.startswith("publish failed")
    probe_queue = f"{settings.queue_prefix}.probe"
    # When the sweep runs at once, then again once the row is a few seconds old
    too_soon = sweeps.unpublished(runtime)
    with runtime.db.session() as session:
        session.execute(
            sa.update(Job)
            .where(Job.id == job.id)
            .values(queued_at=sa.func.now() - timedelta(seconds=30))
        )
    republished = sweeps.unpublished(runtime)
    again = sweeps.unpublished(runtime)
    # Then a fresh row is left to its own publish, the old one is published exactly once,
    # and the row no longer reports the publish error
    assert too_soon == 0
    assert republished == 1
    assert again == 0
    assert queue_depth(probe_queue) == 1
    published = must(runtime, job.id)
    assert published.status == "queued"
    assert published.published_at is not None
    assert published.last_error is None


def test_a_job_published_long_ago_and_never_claimed_is_published_again(
    runtime: Runtime, settings: Settings, client: Client, media: MediaServer
) -> None:
    # Given a queued job whose message was sent an hour ago and never reached a worker
    job = submit(runtime, client, url=media.url("/media/clip.mp4"))
    probe_queue = f"{settings.queue_prefix}.probe"
    assert queue_depth(probe_queue) == 1
    with runtime.db.session() as session:
        session.execute(
            sa.update(Job)
            .where(Job.id == job.id)
            .values(
                queued_at=sa.func.now() - timedelta(hours=1),
                published_at=sa.func.now() - timedelta(hours=1),
            )
        )
    # When the sweep runs
    republished = sweeps.unpublished(runtime)
    # Then the doorbell rings again (a duplicate is harmless; a lost message is not)
    assert republished == 1
    assert queue_depth(probe_queue) == 2
    assert must(runtime, job.id).published_at is not None


def test_a_retry_whose_delayed_message_was_lost_is_published_again_once(
    runtime: Runtime, settings: Settings, client: Client, media: MediaServer
) -> None:
    # Given a job that failed transiently while the broker was down, so no retry was sent
    job = submit(runtime, client, url=media.url("/status/503"))
    with pytest.raises(Transient):
        run_probe(runtime, job.id)
    probe_queue = f"{settings.queue_prefix}.probe"
    take_messages(probe_queue)  # only the submit's message; the retry was never sent
    # When the sweep runs before the retry is due, then after it is long overdue
    too_soon = sweeps.unpublished(runtime)
    with runtime.db.session() as session:
        session.execute(
            sa.update(Job)
            .where(Job.id == job.id)
            .values(
                updated_at=sa.func.now() - timedelta(hours=1),
                next_attempt_at=sa.func.now() - timedelta(hours=1),
                published_at=sa.func.now() - timedelta(hours=1),
            )
        )
    republished = sweeps.unpublished(runtime)
    again = sweeps.unpublished(runtime)
    # Then the retry is announced exactly once, and the claim that follows runs it
    assert (too_soon, republished, again) == (0, 1, 0)
    assert queue_depth(probe_queue) == 1
    assert must(runtime, job.id).status == "retrying"
    with pytest.raises(Transient):
        run_probe(runtime, job.id)
    assert must(runtime, job.id).attempts == 2


def test_a_parent_whose_last_child_finish_was_missed_is_closed_by_the_sweep(
    runtime: Runtime, client: Client
) -> None:
    # Given a playlist parent still waiting although its children all ended, one failed
    parent = Job(
        client_id=client.id,
        url="https://media.example/feed.rss",
        status="running",
        phase=Phase.AWAITING_CHILDREN.value,
        info={"playlist": {"entries_queued": 2, "capped": False}},
    )
    with runtime.db.session() as session:
        session.add(parent)
        session.flush()
        session.add_all(
            [
                Job(
                    client_id=client.id,
                    parent_id=parent.id,
                    url=f"https://media.example/{n}.mp4",
                    step=Step.DOWNLOAD.value,
                    status=status,
                )
                for n, status in enumerate(("succeeded", "failed"))
            ]
        )
    # When the sweep runs (twice: a second scheduler would do no harm)
    closed = sweeps.stranded_parents(runtime)
    closed_again = sweeps.stranded_parents(runtime)
    # Then the parent is failed, saying how many of its entries failed
    assert (closed, closed_again) == (1, 0)
    done = must(runtime, parent.id)
    assert done.status == "failed"
    assert done.error_class == "children_failed"
    assert done.error_message == "1 of 2 entries failed"
    assert done.finished_at is not None
